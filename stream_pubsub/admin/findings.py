"""What `admin.py info` warns about: each warning is something that loses, or will lose, entries
for a group (or the stream itself) without anyone being told.

Per stream key (find_warnings): entries trimmed before a group read them, a consumer gone idle
holding pending entries, pending entries whose data was trimmed, a group with no consumers that
holds back `trim --safe`, dead letters. Of the whole layout (layout_warnings): a sharded stream
whose single key still has groups (they read nothing the producers add now), and shards some
group is missing from (their entries go unread in that group). Of the server (eviction_warnings):
a maxmemory-policy that may evict the stream.
"""

from __future__ import annotations

from .. import presence
from ..connection import eviction_risk
from .output import duration, plural, were


def warning(kind: str, message: str, *, group=None, consumer=None, count=None) -> dict:
    return {"kind": kind, "group": group, "consumer": consumer, "count": count, "message": message}


def find_warnings(doc: dict, warn_idle_ms: int) -> list[dict]:
    """The warnings of one info document (one stream key, or the totals over the shards)."""
    found, stream = [], doc["stream"]
    for group in doc["groups"]:
        name, lost = group["name"], group["trimmed_unread"]
        if lost:
            why = ""
            if group["lag_source"] == "server" and group["lag"] > stream["length"]:
                why = f" (its lag, {group['lag']}, exceeds the stream's length, {stream['length']})"
            found.append(
                warning(
                    "trimmed_unread",
                    f"group {name}: {plural(lost, 'entry')} {were(lost)} trimmed or deleted before it read them{why}",
                    group=name,
                    count=lost,
                )
            )
        if not group["consumers"] and group["lag"]:  # a typo of a group name, or a group nobody runs
            unread = "at least " * group["lag_at_least"] + plural(group["lag"], "unread entry")
            found.append(
                warning(
                    "no_consumers",
                    f"group {name} has no consumers and {unread}: it holds back `trim --safe`; "
                    f"delete it with `admin.py group delete {name}` if it is a typo",
                    group=name,
                    count=group["lag"],
                )
            )
        for member in group["consumers"]:
            if member["pending"] and member["idle_ms"] > warn_idle_ms:
                found.append(
                    warning(
                        "idle_with_pending",
                        f"consumer {member['name']} of group {name} has been idle for {duration(member['idle_ms'])} "
                        f"holding {plural(member['pending'], 'pending entry')} (gone? see `admin.py cleanup --help`)",
                        group=name,
                        consumer=member["name"],
                        count=member["pending"],
                    )
                )
        if gone := group["pending_trimmed"]:
            found.append(
                warning(
                    "pending_trimmed",
                    f"group {name}: {'at least ' * group['pending_trimmed_at_least']}"
                    f"{plural(gone, 'pending entry')} {were(gone)} "
                    "trimmed from the stream before being acknowledged; their data is gone",
                    group=name,
                    count=gone,
                )
            )
    dead = doc["dead_letters"]
    if dead["length"]:
        found.append(
            warning(
                "dead_letters",
                f"{plural(dead['length'], 'entry')} in the dead-letter stream {dead['key']}: see `admin.py dlq list`",
                count=dead["length"],
            )
        )
    return found


def layout_warnings(doc: dict, scope) -> list[dict]:
    """A sharded stream as a whole: groups left on its single key, shards a group is missing from."""
    if not (scope.sharded and scope.whole):
        return []
    found = []
    for group in (doc.get("unsharded") or {}).get("groups", []):
        name = group["name"]
        found.append(
            warning(
                "unsharded_group",
                f"group {name} reads {scope.stream} as one key, but the stream is sharded into {scope.count}: "
                f"what the producers add now goes to the shards, which {name} does not read there; restart its "
                f"consumers (they follow the record) or, once nothing reads {scope.stream} any more, delete the "
                f"group from it (`XGROUP DESTROY {scope.stream} {name}`)",
                group=name,
                count=group["lag"],
            )
        )
    held = [{g["name"] for g in part["groups"]} for part in doc["shards"]]
    for name in sorted(set().union(*held)):
        missing = [shard.index for shard, names in zip(scope.shards, held) if name not in names]
        if not missing:
            continue
        which = (
            f"shard {missing[0]} of {scope.stream} has no group {name}: its entries are"
            if len(missing) == 1
            else f"shards {', '.join(map(str, missing))} of {scope.stream} have no group {name}: their entries are"
        )
        found.append(
            warning(
                "shards_without_group",
                f"{which} read by no one in {name} (`admin.py group create {name} --start-from 0` adds it there)",
                group=name,
                count=len(missing),
            )
        )
    return found


def eviction_warnings(connection, scope) -> list[dict]:
    """Redis may evict the stream's keys when it is full (maxmemory-policy): one warning, or none."""
    keys = [key for shard in scope.shards for key in (shard.key, shard.dlq)]
    risk = eviction_risk(connection.db, keys)
    return [warning("eviction", risk.removeprefix("WARNING: "))] if risk else []


def holding_warnings(connection, doc: dict, scope) -> list[dict]:
    """Consumers whose handler has had a batch in hand longer than --claim-idle (they say so in the
    name of their connection: stream_pubsub/presence.py): slow, or hung."""
    docs = doc.get("shards") or [doc]
    by_node: dict = {}
    for shard, part in zip(scope.shards, docs):
        db = connection.db.get_node_from_key(shard.key).redis_connection if connection.cluster else connection.db
        for group in part["groups"]:
            for consumer in group["consumers"]:
                by_node.setdefault(id(db), (db, []))[1].append((shard.key, group["name"], consumer["name"]))
    found = []
    for db, consumers in by_node.values():
        for (key, group, consumer), seconds in sorted(presence.holding(db, consumers).items()):
            message = (
                f"consumer {consumer} of group {group} has had a batch of {key} in hand for {seconds:.0f}s: a slow or "
                "hung handler (it lets the batch go after its --handler-timeout)"
            )
            found.append(warning("held_long", message, group=group, consumer=consumer))
    return found
