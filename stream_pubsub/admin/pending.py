"""`admin.py pending`: the entries a group delivered that nobody has acknowledged yet (XPENDING)."""

from __future__ import annotations

import click

from .keys import require_group
from .output import duration, plural, table


def pending(connection, stream: str, group: str, *, consumer: str | None, min_idle: int, count: int) -> dict:
    """The pending document: the group's total, per consumer, and the oldest `count` entries."""
    db = connection.db
    require_group(connection, stream, group)
    summary = db.xpending(stream, group)
    per_consumer = {c["name"].decode(): c["pending"] for c in summary["consumers"]}
    members = [c["name"].decode() for c in db.xinfo_consumers(stream, group)]
    if consumer is not None and consumer not in members:
        raise click.ClickException(
            f"no consumer {consumer!r} in group {group!r} (its consumers: {', '.join(members) or 'none'})"
        )
    rows = db.xpending_range(stream, group, "-", "+", count + 1, consumername=consumer, idle=min_idle or None)
    more, rows = len(rows) > count, rows[:count]
    with db.pipeline(transaction=False) as pipe:  # is each entry's data still in the stream?
        for row in rows:
            pipe.xrange(stream, row["message_id"], row["message_id"], count=1)
        present = pipe.execute()
    entries = [
        {
            "id": row["message_id"].decode(),
            "consumer": row["consumer"].decode(),
            "idle_ms": row["time_since_delivered"],
            "deliveries": row["times_delivered"],
            "in_stream": bool(found),
        }
        for row, found in zip(rows, present)
    ]
    return {
        "stream": stream,
        "group": group,
        "pending": summary["pending"],
        "consumers": per_consumer,
        "filters": {"consumer": consumer, "min_idle_ms": min_idle},
        "entries": entries,
        "more": more,
    }


def render(doc: dict, count: int) -> str:
    consumer, min_idle, entries = doc["filters"]["consumer"], doc["filters"]["min_idle_ms"], doc["entries"]
    holders = ", ".join(f"{name} {n}" for name, n in doc["consumers"].items())
    lines = [
        f"group {doc['group']} on {doc['stream']}: {plural(doc['pending'], 'pending entry')}"
        + (f" ({holders})" if holders else "")
    ]
    filters = [f"consumer {consumer}"] * bool(consumer) + [f"idle at least {duration(min_idle)}"] * bool(min_idle)
    if filters:
        lines.append(f"  only {', '.join(filters)}: {len(entries)}{'+' if doc['more'] else ''}")
    if entries:
        gone = any(not e["in_stream"] for e in entries)
        lines += table(
            ["ID", "CONSUMER", "IDLE", "DELIVERIES"] + ["DATA"] * gone,
            [
                [e["id"], e["consumer"], duration(e["idle_ms"]), e["deliveries"]]
                + ["" if e["in_stream"] else "trimmed away"] * gone
                for e in entries
            ],
        )
    if doc["more"]:
        lines.append(f"  ... more not shown (raise --count above {count})")
    return "\n".join(lines)
