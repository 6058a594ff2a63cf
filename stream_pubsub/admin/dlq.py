"""`admin.py dlq`: read the dead-letter stream, replay what failed, purge what is hopeless.

The dead-letter format (original fields + dlq.* metadata) is in stream_pubsub/dead_letters.py.
"""

from __future__ import annotations

import click
import redis.exceptions as rex

from ..dead_letters import split
from ..ids import next_id
from .keys import is_stream
from .output import plural, table, text


def dead_letter_doc(entry_id: bytes, fields: dict) -> dict:
    """A dead-letter entry: its metadata (see dead_letters.py) and the original fields."""
    meta, original = split(fields)
    deliveries = meta.get("deliveries")
    return {
        "id": entry_id.decode(),
        "original_id": meta.get("id"),
        "stream": meta.get("stream"),
        "group": meta.get("group"),
        "consumer": meta.get("consumer"),
        "deliveries": int(deliveries) if deliveries and deliveries.isdigit() else None,
        "error": meta.get("error"),
        "time": meta.get("time"),
        "fields": {text(k): text(v) for k, v in original.items()},
    }


def listing(connection, key: str, count: int) -> tuple[dict, str]:
    """`dlq list`: (the document, the text) of the oldest `count` dead letters."""
    exists = is_stream(connection, key)
    length = connection.db.xlen(key) if exists else 0
    rows = connection.db.xrange(key, count=count + 1) if exists else []
    entries = [dead_letter_doc(i, f) for i, f in rows[:count]]
    doc = {"key": key, "length": length, "entries": entries, "more": len(rows) > count}
    lines = [f"{key}: {plural(length, 'dead letter')}"]
    if entries:
        lines += table(
            ["ID", "FROM", "GROUP/CONSUMER", "DELIVERIES", "ERROR"],
            [
                [
                    e["id"],
                    f"{e['stream']} {e['original_id']}",
                    f"{e['group']}/{e['consumer']}",
                    e["deliveries"],
                    e["error"],
                ]
                for e in entries
            ],
        )
    if doc["more"]:
        lines.append(f"  ... more not shown (raise --count above {count})")
    return doc, "\n".join(lines)


def read_dead_letters(connection, key: str, ids) -> list:
    """The dead-letter entries with these IDs; a missing one is an error before anything changes."""
    with connection.db.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(key, entry_id, entry_id, count=1)
        found = pipe.execute()
    missing = [entry_id for entry_id, rows in zip(ids, found) if not rows]
    if missing:
        raise click.ClickException(
            f"no entry {', '.join(missing)} in the dead-letter stream {key} (`admin.py dlq list` shows what is there)"
        )
    return [rows[0] for rows in found]


def showing(connection, key: str, entry_id: str) -> tuple[dict, str]:
    """`dlq show`: (the document, the text) of one dead letter in full."""
    is_stream(connection, key)
    [(found_id, fields)] = read_dead_letters(connection, key, [entry_id])
    doc = dead_letter_doc(found_id, fields)
    about = [
        ["from", f"{doc['stream']}, entry {doc['original_id']}"],
        ["group", doc["group"]],
        ["consumer", doc["consumer"]],
        ["deliveries", doc["deliveries"]],
        ["time", doc["time"]],
        ["error", doc["error"]],
    ]
    lines = [
        f"dead letter {doc['id']} in {key}",
        *table(["", ""], about)[1:],
        "original fields",
        *table(["", ""], [[k, v] for k, v in doc["fields"].items()])[1:],
    ]
    return doc, "\n".join(lines)


def replay(connection, key: str, stream: str, ids, replay_all: bool) -> None:
    """`dlq replay`: add each dead letter back to its stream, then remove it here; say each."""
    db, replayed = connection.db, 0
    with connection.errors(key=key):
        if not is_stream(connection, key):
            raise click.ClickException(f"the dead-letter stream {key} does not exist: nothing to replay")
        if replay_all:  # up to the newest entry now: dead letters added meanwhile wait for next time
            newest = db.xrevrange(key, count=1)
            todo = db.xrange(key, "-", newest[0][0]) if newest else []
        else:
            todo = read_dead_letters(connection, key, ids)
    for entry_id, fields in todo:
        meta, original = split(fields)
        target = meta.get("stream") or stream
        if not original:
            click.echo(f"skipped {entry_id.decode()}: it has no original fields to add again", err=True)
            continue
        try:
            new_id = db.xadd(target, original)
        except rex.RedisError as exc:
            maybe = (
                ", and it may have been added again (look with `admin.py range`)"
                if isinstance(exc, (rex.ConnectionError, rex.TimeoutError))
                else ""
            )
            raise click.ClickException(
                f"could not add {entry_id.decode()} back to {target} "
                f"({connection.describe(exc, target)}); it is still in {key}{maybe}"
            )
        try:  # only now that it is safely back on its stream
            db.xdel(key, entry_id)
        except rex.RedisError as exc:
            raise click.ClickException(
                f"added {entry_id.decode()} back to {target} as {new_id.decode()}, but could not remove it from "
                f"{key} ({connection.describe(exc, key)}); it is in both now: do not replay it again, remove it "
                f"with `admin.py dlq purge {entry_id.decode()}`"
            )
        replayed += 1
        click.echo(f"replayed {entry_id.decode()} (was {meta.get('id')}) to {target} as {new_id.decode()}")
    click.echo(f"replayed {plural(replayed, 'dead letter')} from {key}", err=True)


def purge(connection, key: str, ids, yes: bool) -> None:
    """`dlq purge`: delete the named dead letters, or all there are now (asking first unless yes)."""
    db = connection.db
    with connection.errors(key=key):
        if not is_stream(connection, key):
            click.echo(f"{key} does not exist: nothing to purge")
            return
        if ids:
            read_dead_letters(connection, key, ids)
            what = f"{plural(len(ids), 'dead letter')} from {key}"
        else:
            newest, length = db.xrevrange(key, count=1), db.xlen(key)
            what = f"all {plural(length, 'dead letter')} in {key}"
            if not newest:
                click.echo(f"{key} is empty: nothing to purge")
                return
        if not yes:
            click.confirm(f"delete {what} for good?", abort=True)
        # MINID just above the newest one seen: what a consumer dead-letters meanwhile stays
        removed = db.xdel(key, *ids) if ids else db.xtrim(key, minid=next_id(newest[0][0]), approximate=False)
    click.echo(f"deleted {plural(removed, 'dead letter')} from {key}")
