"""`admin.py dlq`: read the dead-letter stream, replay what failed, purge what is hopeless.

The dead-letter format (original fields + dlq.* metadata) is in stream_pubsub/dead_letters.py.
A sharded stream has a dead-letter stream per shard (scope.py): they are read merged by ID, and
each dead letter goes back to the shard it came from (its dlq.stream).
"""

from __future__ import annotations

import click
import redis.exceptions as rex

from ..dead_letters import split
from ..ids import next_id, parse_id
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


def listing(connection, scope, count: int) -> tuple[dict, str]:
    """`dlq list`: (the document, the text) of the oldest `count` dead letters."""
    db, length, rows = connection.db, 0, []
    for shard in scope.shards:
        if is_stream(connection, shard.dlq):
            length += db.xlen(shard.dlq)
            rows += [(shard, i, f) for i, f in db.xrange(shard.dlq, count=count + 1)]
    rows.sort(key=lambda row: (parse_id(row[1]), row[0].index))
    entries = [doc_in(scope, shard, i, f) for shard, i, f in rows[:count]]
    doc = {"key": scope.dlq_name, "length": length, "entries": entries, "more": len(rows) > count}
    lines = [f"{scope.dlq_label}: {plural(length, 'dead letter')}"]
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


def doc_in(scope, shard, entry_id: bytes, fields: dict) -> dict:
    """The dead letter's document; on a sharded stream with the dead-letter key that holds it."""
    doc = dead_letter_doc(entry_id, fields)
    return {**doc, "key": shard.dlq} if scope.sharded else doc


def read_dead_letters(connection, scope, ids) -> list:
    """[(shard, ID, fields)] of the dead letters with these IDs; a missing one, or one that several
    shards hold (IDs are per stream key), is an error before anything changes."""
    with connection.db.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            for shard in scope.shards:
                pipe.xrange(shard.dlq, entry_id, entry_id, count=1)
        found = pipe.execute()
    per_id = [found[n * len(scope.shards) : (n + 1) * len(scope.shards)] for n in range(len(ids))]
    missing = [entry_id for entry_id, rows in zip(ids, per_id) if not any(rows)]
    if missing:
        raise click.ClickException(
            f"no entry {', '.join(missing)} in the dead-letter stream {scope.dlq_label} "
            "(`admin.py dlq list` shows what is there)"
        )
    todo = []
    for entry_id, rows in zip(ids, per_id):
        held = [(shard, *hit[0]) for shard, hit in zip(scope.shards, rows) if hit]
        if len(held) > 1:
            raise click.ClickException(
                f"{entry_id} is in {len(held)} dead-letter shards ({', '.join(str(h[0].index) for h in held)}): "
                "name one with --shard I"
            )
        todo += held
    return todo


def showing(connection, scope, entry_id: str) -> tuple[dict, str]:
    """`dlq show`: (the document, the text) of one dead letter in full."""
    for shard in scope.shards:
        is_stream(connection, shard.dlq)
    [(shard, found_id, fields)] = read_dead_letters(connection, scope, [entry_id])
    doc = doc_in(scope, shard, found_id, fields)
    about = [
        ["from", f"{doc['stream']}, entry {doc['original_id']}"],
        ["group", doc["group"]],
        ["consumer", doc["consumer"]],
        ["deliveries", doc["deliveries"]],
        ["time", doc["time"]],
        ["error", doc["error"]],
    ]
    lines = [
        f"dead letter {doc['id']} in {shard.dlq}",
        *table(["", ""], about)[1:],
        "original fields",
        *table(["", ""], [[k, v] for k, v in doc["fields"].items()])[1:],
    ]
    return doc, "\n".join(lines)


def replay(connection, scope, ids, replay_all: bool) -> None:
    """`dlq replay`: add each dead letter back to its stream, then remove it here; say each."""
    db, replayed, todo = connection.db, 0, []
    with connection.errors(key=scope.dlq_name):
        held = [shard for shard in scope.shards if is_stream(connection, shard.dlq)]
        if not held:
            raise click.ClickException(f"the dead-letter stream {scope.dlq_label} does not exist: nothing to replay")
        if not replay_all:
            todo = read_dead_letters(connection, scope, ids)
        for shard in held if replay_all else ():  # up to the newest now: dead letters added meanwhile wait
            newest = db.xrevrange(shard.dlq, count=1)
            todo += [(shard, i, f) for i, f in (db.xrange(shard.dlq, "-", newest[0][0]) if newest else [])]
    for shard, entry_id, fields in todo:
        key = shard.dlq
        meta, original = split(fields)
        target = meta.get("stream") or shard.key
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
    click.echo(f"replayed {plural(replayed, 'dead letter')} from {scope.dlq_label}", err=True)


def purge(connection, scope, ids, yes: bool) -> None:
    """`dlq purge`: delete the named dead letters, or all there are now (asking first unless yes)."""
    db, label = connection.db, scope.dlq_label
    with connection.errors(key=scope.dlq_name):
        held = [shard for shard in scope.shards if is_stream(connection, shard.dlq)]
        if not held:
            click.echo(f"{label} does not exist: nothing to purge")
            return
        if ids:
            found = read_dead_letters(connection, scope, ids)
            what = f"{plural(len(ids), 'dead letter')} from {label}"
        else:
            newest = {shard: db.xrevrange(shard.dlq, count=1) for shard in held}
            length = sum(db.xlen(shard.dlq) for shard in held)
            what = f"all {plural(length, 'dead letter')} in {label}"
            if not any(newest.values()):
                click.echo(f"{label} is empty: nothing to purge")
                return
        if not yes:
            click.confirm(f"delete {what} for good?", abort=True)
        if ids:
            removed = sum(db.xdel(shard.dlq, entry_id) for shard, entry_id, _ in found)
        else:  # MINID just above the newest one seen: what a consumer dead-letters meanwhile stays
            removed = sum(
                db.xtrim(shard.dlq, minid=next_id(top[0][0]), approximate=False) for shard, top in newest.items() if top
            )
    click.echo(f"deleted {plural(removed, 'dead letter')} from {label}")
