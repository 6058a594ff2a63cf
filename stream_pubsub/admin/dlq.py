"""`admin.py dlq`: read the dead-letter stream and purge what is hopeless (replay.py puts dead
letters back on their stream).

The dead-letter format (original fields + dlq.* metadata) is in stream_pubsub/dead_letters.py.
A sharded stream has a dead-letter stream per shard (scope.py): they are read merged by ID, and
each dead letter goes back to the shard it came from (its dlq.stream).
"""

from __future__ import annotations

import heapq
from itertools import chain, islice

from ..dead_letters import split
from ..ids import next_id, parse_id, read_range
from ..telling import UserError
from . import keys
from .output import Later, plural, table, table_lines, text

# What `admin.py dlq --help` and `dlq list/show/purge --help` say (admin.py declares the commands and options).
HELP = """Dead letters: entries the consumers gave up on, with the reason, and putting them back.

\b
    python admin.py dlq list
    python admin.py dlq show 1700000000000-0
    python admin.py dlq replay --all
    python admin.py dlq purge

A consumer dead-letters an entry that is invalid or failed more than --max-deliveries times:
it copies it to the dead-letter stream (default <stream>:dlq) with the reason, then
acknowledges it. Fix the cause, then replay it. A sharded stream has dead letters per shard
(<dead-letter>:{<shard's tag>}); every command covers them all, or --shard I's.
"""

LIST_HELP = """The dead letters, oldest first: where each came from and why it failed.

\b
    python admin.py dlq list
"""

SHOW_HELP = """One dead letter in full: its original fields and everything known about its failure.

\b
    python admin.py dlq show 1700000000000-0

ID is the dead letter's own ID, as `dlq list` shows it.
"""

PURGE_HELP = """Delete dead letters for good: the ones named, or all of them.

\b
    python admin.py dlq purge 1700000000000-0
    python admin.py dlq purge --yes

Without IDs it deletes every dead letter there is when it starts (one added meanwhile stays).
It asks first unless --yes is given.
"""


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


def listing(connection, scope, count: int) -> dict:
    """`dlq list`: the document of the oldest `count` dead letters, read as they are printed (a
    page at a time, merged by ID over the shards)."""
    db = connection.db
    held = keys.held(connection, scope, dead_letters=True)

    def of(shard):  # count + 1: one more tells that more follow
        for entry_id, fields in read_range(db, shard.dlq, limit=count + 1):
            yield parse_id(entry_id), shard.index, shard, entry_id, fields

    rows = heapq.merge(*map(of, held), key=lambda row: row[:2])
    return {
        "key": scope.dlq_name,
        "length": sum(db.xlen(shard.dlq) for shard in held),
        "entries": (doc_in(scope, shard, i, f) for _, _, shard, i, f in islice(rows, count)),
        "more": Later(lambda: next(rows, None) is not None),
    }


def render_listing(doc: dict, *, count: int, scope):
    yield f"{scope.dlq_label}: {plural(doc['length'], 'dead letter')}"
    entries = doc["entries"]
    if (first := next(entries, None)) is not None:
        headers = ["ID", "FROM", "GROUP/CONSUMER", "DELIVERIES", "ERROR"]
        yield from table_lines(headers, (row_of(e) for e in chain([first], entries)))
    if doc["more"].value:
        yield f"  ... more not shown (raise --count above {count})"


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
        raise UserError(
            f"no entry {', '.join(missing)} in the dead-letter stream {scope.dlq_label} "
            "(`admin.py dlq list` shows what is there)"
        )
    todo = []
    for entry_id, rows in zip(ids, per_id):
        held = [(shard, *hit[0]) for shard, hit in zip(scope.shards, rows) if hit]
        if len(held) > 1:
            raise UserError(
                f"{entry_id} is in {len(held)} dead-letter shards ({', '.join(str(h[0].index) for h in held)}): "
                "name one with --shard I"
            )
        todo += held
    return todo


def showing(connection, scope, entry_id: str) -> dict:
    """`dlq show`: the document of one dead letter in full (on a sharded stream with its "key")."""
    keys.held(connection, scope, dead_letters=True)  # (a key of another type: said as such)
    [(shard, found_id, fields)] = read_dead_letters(connection, scope, [entry_id])
    return doc_in(scope, shard, found_id, fields)


def render_showing(doc: dict, *, scope) -> list[str]:
    about = [
        ["from", f"{doc['stream']}, entry {doc['original_id']}"],
        ["group", doc["group"]],
        ["consumer", doc["consumer"]],
        ["deliveries", doc["deliveries"]],
        ["time", doc["time"]],
        ["error", doc["error"]],
    ]
    return [
        f"dead letter {doc['id']} in {doc.get('key', scope.dlq_name)}",
        *table(["", ""], about)[1:],
        "original fields",
        *table(["", ""], [[k, v] for k, v in doc["fields"].items()])[1:],
    ]


def purge(connection, scope, ids, confirm) -> dict:
    """`dlq purge`: delete the named dead letters, or all there are now, once `confirm(question)`
    returned (it raises to say no; None: do not ask). The document says how many went."""
    db, label = connection.db, scope.dlq_label
    held = keys.held(connection, scope, dead_letters=True)
    if not held:
        return {"key": scope.dlq_name, "deleted": 0, "nothing": "does not exist"}
    if ids:
        found = read_dead_letters(connection, scope, ids)
        what = f"{plural(len(ids), 'dead letter')} from {label}"
    else:
        newest = {shard: db.xrevrange(shard.dlq, count=1) for shard in held}
        length = sum(db.xlen(shard.dlq) for shard in held)
        what = f"all {plural(length, 'dead letter')} in {label}"
        if not any(newest.values()):
            return {"key": scope.dlq_name, "deleted": 0, "nothing": "is empty"}
    if confirm is not None:
        confirm(f"delete {what} for good?")
    if ids:
        removed = sum(db.xdel(shard.dlq, entry_id) for shard, entry_id, _ in found)
    else:  # MINID just above the newest one seen: what a consumer dead-letters meanwhile stays
        removed = sum(
            db.xtrim(shard.dlq, minid=next_id(top[0][0]), approximate=False) for shard, top in newest.items() if top
        )
    return {"key": scope.dlq_name, "deleted": removed}


def render_purge(doc: dict, *, scope) -> list[str]:
    if "nothing" in doc:
        return [f"{scope.dlq_label} {doc['nothing']}: nothing to purge"]
    return [f"deleted {plural(doc['deleted'], 'dead letter')} from {scope.dlq_label}"]
