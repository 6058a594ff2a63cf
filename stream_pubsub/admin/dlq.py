"""`admin.py dlq`: read the dead-letter stream and purge what is hopeless (replay.py puts dead
letters back on their stream).

The dead-letter format (original fields + dlq.* metadata) is in stream_pubsub/dead_letters.py.
A sharded stream has a dead-letter stream per shard (scope.py): they are read merged by ID, and
each dead letter goes back to the shard it came from (its dlq.stream).
"""

from __future__ import annotations

import heapq
from itertools import chain, islice

import click

from ..dead_letters import split
from ..ids import next_id, parse_id, read_range
from . import keys
from .output import emit_streamed, plural, table, table_lines, text


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


def listing(connection, scope, count: int, as_json: bool) -> None:
    """`dlq list`: the oldest `count` dead letters, printed as they are read (a page at a time)."""
    with connection.errors(key=scope.dlq_name):
        list_dead_letters(connection, scope, count, as_json)


def list_dead_letters(connection, scope, count: int, as_json: bool) -> None:
    db = connection.db
    held = keys.held(connection, scope, dead_letters=True)
    length = sum(db.xlen(shard.dlq) for shard in held)

    def of(shard):  # count + 1: one more tells that more follow
        for entry_id, fields in read_range(db, shard.dlq, limit=count + 1):
            yield parse_id(entry_id), shard.index, shard, entry_id, fields

    rows = heapq.merge(*map(of, held), key=lambda row: row[:2])
    entries = (doc_in(scope, shard, i, f) for _, _, shard, i, f in islice(rows, count))
    if as_json:
        more = lambda: {"more": next(rows, None) is not None}  # noqa: E731
        emit_streamed({"key": scope.dlq_name, "length": length}, "entries", entries, more)
        return
    click.echo(f"{scope.dlq_label}: {plural(length, 'dead letter')}")
    if (first := next(entries, None)) is not None:
        headers = ["ID", "FROM", "GROUP/CONSUMER", "DELIVERIES", "ERROR"]
        for line in table_lines(headers, (row_of(e) for e in chain([first], entries))):
            click.echo(line)
    if next(rows, None) is not None:
        click.echo(f"  ... more not shown (raise --count above {count})")


def row_of(e: dict) -> list:
    return [e["id"], f"{e['stream']} {e['original_id']}", f"{e['group']}/{e['consumer']}", e["deliveries"], e["error"]]


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
    with connection.errors(key=scope.dlq_name):
        keys.held(connection, scope, dead_letters=True)  # (a key of another type: said as such)
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


def purge(connection, scope, ids, yes: bool) -> None:
    """`dlq purge`: delete the named dead letters, or all there are now (asking first unless yes)."""
    db, label = connection.db, scope.dlq_label
    with connection.errors(key=scope.dlq_name):
        held = keys.held(connection, scope, dead_letters=True)
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
