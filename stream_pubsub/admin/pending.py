"""`admin.py pending`: the entries a group delivered that nobody has acknowledged yet (XPENDING).

On a sharded stream the group is the same-named group of each shard: its entries are merged
oldest first (by ID), each naming the shard key that holds it.
"""

from __future__ import annotations

import click

from ..ids import parse_id
from .keys import shards_with_group
from .output import duration, plural, table


def pending(connection, scope, group: str, *, consumer: str | None, min_idle: int, count: int) -> dict:
    """The pending document: the group's total, per consumer, and the oldest `count` entries."""
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
        raise click.ClickException(
            f"no consumer {consumer!r} in group {group!r} (its consumers: {', '.join(members) or 'none'})"
        )
    rows = [
        (shard, row)
        for shard in found
        for row in db.xpending_range(
            shard.key, group, "-", "+", count + 1, consumername=consumer, idle=min_idle or None
        )
    ]
    rows.sort(key=lambda pair: (parse_id(pair[1]["message_id"]), pair[0].index))
    more, rows = len(rows) > count, rows[:count]
    with db.pipeline(transaction=False) as pipe:  # is each entry's data still in the stream?
        for shard, row in rows:
            pipe.xrange(shard.key, row["message_id"], row["message_id"], count=1)
        present = pipe.execute() if rows else []
    entries = [
        {
            "id": row["message_id"].decode(),
            "consumer": row["consumer"].decode(),
            "idle_ms": row["time_since_delivered"],
            "deliveries": row["times_delivered"],
            "in_stream": bool(hit),
            **({"stream": shard.key} if scope.sharded else {}),
        }
        for (shard, row), hit in zip(rows, present)
    ]
    return {
        "stream": scope.name,
        "group": group,
        "pending": total,
        "consumers": dict(sorted(per_consumer.items())) if scope.sharded else per_consumer,
        "filters": {"consumer": consumer, "min_idle_ms": min_idle},
        "entries": entries,
        "more": more,
    }


def render(doc: dict, count: int, scope) -> str:
    consumer, min_idle, entries = doc["filters"]["consumer"], doc["filters"]["min_idle_ms"], doc["entries"]
    holders = ", ".join(f"{name} {n}" for name, n in doc["consumers"].items())
    lines = [
        f"group {doc['group']} on {scope.label}: {plural(doc['pending'], 'pending entry')}"
        + (f" ({holders})" if holders else "")
    ]
    filters = [f"consumer {consumer}"] * bool(consumer) + [f"idle at least {duration(min_idle)}"] * bool(min_idle)
    if filters:
        lines.append(f"  only {', '.join(filters)}: {len(entries)}{'+' if doc['more'] else ''}")
    if entries:
        gone, sharded = any(not e["in_stream"] for e in entries), scope.sharded
        lines += table(
            ["ID"] + ["SHARD"] * sharded + ["CONSUMER", "IDLE", "DELIVERIES"] + ["DATA"] * gone,
            [
                [e["id"]]
                + [e.get("stream")] * sharded
                + [e["consumer"], duration(e["idle_ms"]), e["deliveries"]]
                + ["" if e["in_stream"] else "trimmed away"] * gone
                for e in entries
            ],
        )
    if doc["more"]:
        lines.append(f"  ... more not shown (raise --count above {count})")
    return "\n".join(lines)
