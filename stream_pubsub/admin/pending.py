"""`admin.py pending`: the entries a group delivered that nobody has acknowledged yet (XPENDING).

On a sharded stream the group is the same-named group of each shard: its entries are merged
oldest first (by ID), each naming the shard key that holds it. The entries are read a page at a
time (XPENDING with COUNT) and printed as they come, so --count 1000000 needs no more memory
than --count 100.
"""

from __future__ import annotations

import heapq
from itertools import chain, islice

from ..ids import PAGE, parse_id
from ..telling import UserError
from .keys import shards_with_group
from .output import Later, duration, plural, table_lines

# What `admin.py pending --help` says (admin.py declares the command and its options).
HELP = """The entries GROUP has delivered but nobody has acknowledged yet, oldest first.

\b
    python admin.py pending group1
    python admin.py pending group1 --consumer c1 --min-idle 60000

For each: the consumer holding it, how long since it was last delivered (idle), and how
many times it was delivered. An entry that keeps coming back failed every time; one idle for
long sits with a consumer that is stuck or gone (a running consumer claims it after its
--claim-idle). An entry whose data was trimmed away is marked: it can only be dropped.
On a sharded stream: the group on every shard, oldest first, each entry with its shard.
"""


def pending(connection, scope, group: str, *, consumer: str | None, min_idle: int, count: int) -> dict:
    """The document: the group's total, per consumer, and its oldest `count` entries (with the
    filters), read as they are printed. A group or consumer that does not exist: a UserError now."""
    db = connection.db
    found = shards_with_group(connection, scope, group)
    total, per_consumer, members = 0, {}, {}
    for shard in found:
        summary = db.xpending(shard.key, group)
        total += summary["pending"]
        for c in summary["consumers"]:
            name = c["name"].decode()
            per_consumer[name] = per_consumer.get(name, 0) + c["pending"]
        members.update(dict.fromkeys(c["name"].decode() for c in db.xinfo_consumers(shard.key, group)))
    if consumer is not None and consumer not in members:
        raise UserError(f"no consumer {consumer!r} in group {group!r} (its consumers: {', '.join(members) or 'none'})")

    def of(shard):  # XPENDING a page at a time; count + 1: one more tells that more follow
        start, left = "-", count + 1
        while left:
            want = min(PAGE, left)
            rows = db.xpending_range(shard.key, group, start, "+", want, consumername=consumer, idle=min_idle or None)
            yield from ((parse_id(row["message_id"]), shard.index, shard, row) for row in rows)
            if len(rows) < want:
                return
            left, start = left - want, "(" + rows[-1]["message_id"].decode()

    rows = heapq.merge(*map(of, found), key=lambda row: row[:2])
    return {
        "stream": scope.name,
        "group": group,
        "pending": total,
        "consumers": dict(sorted(per_consumer.items())) if scope.sharded else per_consumer,
        "filters": {"consumer": consumer, "min_idle_ms": min_idle},
        "entries": with_data(db, scope, (row[2:] for row in islice(rows, count))),
        "more": Later(lambda: next(rows, None) is not None),
    }


def with_data(db, scope, rows):
    """Each pending entry's document, with whether its data is still in the stream (XRANGE of its
    ID, a page of them per pipeline)."""
    while page := list(islice(rows, PAGE)):
        with db.pipeline(transaction=False) as pipe:
            for shard, row in page:
                pipe.xrange(shard.key, row["message_id"], row["message_id"], count=1)
            present = pipe.execute()
        for (shard, row), hit in zip(page, present):
            yield {
                "id": row["message_id"].decode(),
                "consumer": row["consumer"].decode(),
                "idle_ms": row["time_since_delivered"],
                "deliveries": row["times_delivered"],
                "in_stream": bool(hit),
                **({"stream": shard.key} if scope.sharded else {}),
            }


def render(doc: dict, *, count: int, scope):
    """The text: a line about the group, the table as it comes (a DATA column if its first page
    has an entry whose data is gone; a later one is marked at the end of its row)."""
    consumer, min_idle = doc["filters"]["consumer"], doc["filters"]["min_idle_ms"]
    holders = ", ".join(f"{name} {n}" for name, n in doc["consumers"].items())
    yield f"group {doc['group']} on {scope.label}: {plural(doc['pending'], 'pending entry')}" + (
        f" ({holders})" if holders else ""
    )
    entries = doc["entries"]
    first = list(islice(entries, PAGE))
    gone, sharded, shown = any(not e["in_stream"] for e in first), scope.sharded, 0

    def row(e: dict) -> list:
        nonlocal shown
        shown += 1
        data = ["" if e["in_stream"] else "trimmed away"] * (gone or not e["in_stream"])
        return [e["id"], *[e.get("stream")] * sharded, e["consumer"], duration(e["idle_ms"]), e["deliveries"], *data]

    if first:
        headers = ["ID"] + ["SHARD"] * sharded + ["CONSUMER", "IDLE", "DELIVERIES"] + ["DATA"] * gone
        yield from table_lines(headers, map(row, chain(first, entries)))
    filters = [f"consumer {consumer}"] * bool(consumer) + [f"idle at least {duration(min_idle)}"] * bool(min_idle)
    following = doc["more"].value
    if filters:
        yield f"  only {', '.join(filters)}: {shown}{'+' if following else ''}"
    if following:
        yield f"  ... more not shown (raise --count above {count})"
