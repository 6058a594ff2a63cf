"""The info document of a sharded stream: the shards' documents summed into one.

Counts are summed (None, unknown, if any shard cannot tell); a group is the same-named group of
every shard, a consumer the same-named consumer of every shard's group (its pending summed, its
idle time the shortest: a consumer reading all shards is as idle as its latest read anywhere).
IDs of different shards do not count the same entries, so the first and last IDs are only the
oldest and newest of any shard.
"""

from __future__ import annotations

from ..ids import entries_read, parse_id


def total(values) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def least(values) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def active(values) -> int | None:
    """The least INACTIVE over the shards: -1 (never got anything) only if so on every shard."""
    known = [v for v in values if v is not None]
    return min((v for v in known if v >= 0), default=-1 if known else None)


def oldest(ids, newest: bool = False) -> str | None:
    known = [i for i in ids if i is not None]
    if not known:
        return None
    return (max if newest else min)(known, key=parse_id)


def stream_total(key: str, views: list[dict], cap: int | None) -> dict:
    live = [v for v in views if v["exists"]]
    if not live:
        return {**views[0], "key": key}
    return {
        "key": key,
        "exists": True,
        "length": sum(v["length"] for v in live),
        "first_id": oldest(v["first_id"] for v in live),
        "last_id": oldest((v["last_id"] for v in live), newest=True),
        "last_generated_id": oldest((v["last_generated_id"] for v in live), newest=True),
        "entries_added": total(v["entries_added"] for v in live),
        "removed": total(v["removed"] for v in live),
        "max_deleted_id": oldest((v["max_deleted_id"] for v in live), newest=True),
        "cap": cap,
    }


def group_total(name: str, groups: list[dict]) -> dict:
    members: dict[str, list[dict]] = {}
    for group in groups:
        for member in group["consumers"]:
            members.setdefault(member["name"], []).append(member)
    read = total(entries_read(g["entries_read"], g["last_delivered_id"]) for g in groups)
    if all(g["entries_read"] is None for g in groups):
        read = None  # none on every shard: none in all, as Redis says it of one key
    return {
        "name": name,
        "consumers": [
            {
                "name": member,
                "pending": sum(m["pending"] for m in each),
                "idle_ms": min(m["idle_ms"] for m in each),
                "inactive_ms": active(m["inactive_ms"] for m in each),
            }
            for member, each in sorted(members.items())
        ],
        "pending": sum(g["pending"] for g in groups),
        "last_delivered_id": oldest((g["last_delivered_id"] for g in groups), newest=True),
        "entries_read": read,
        "lag": total(g["lag"] for g in groups),
        "lag_source": "counted" if any(g["lag_source"] == "counted" for g in groups) else "server",
        "lag_at_least": any(g["lag_at_least"] for g in groups),
        "trimmed_unread": total(g["trimmed_unread"] for g in groups),
        "pending_trimmed": sum(g["pending_trimmed"] for g in groups),
        "pending_trimmed_at_least": any(g["pending_trimmed_at_least"] for g in groups),
    }


def combine(key: str, dlq: str, docs: list[dict], cap: int | None) -> dict:
    """The totals over the shards' documents (without warnings: info finds them in the totals)."""
    groups: dict[str, list[dict]] = {}
    for doc in docs:
        for group in doc["groups"]:
            groups.setdefault(group["name"], []).append(group)
    return {
        "stream": stream_total(key, [d["stream"] for d in docs], cap),
        "groups": [group_total(name, each) for name, each in sorted(groups.items())],
        "dead_letters": {"key": dlq, "length": sum(d["dead_letters"]["length"] for d in docs)},
        "warnings": [],
    }
