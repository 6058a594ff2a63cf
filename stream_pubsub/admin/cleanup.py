"""`admin.py cleanup`: remove a group's consumers that are gone, without orphaning their entries.

XGROUP DELCONSUMER drops a consumer's pending entries unacknowledged, so a consumer that holds
some is removed only after they were handed to a running one (XCLAIM).
"""

from __future__ import annotations

import redis.exceptions as rex

from ..telling import UserError
from .keys import shards_with_group
from .output import duration, plural

# What `admin.py cleanup --help` says (admin.py declares the command and its options).
HELP = """Remove GROUP's consumers idle for longer than --idle ms, losing no pending entry.

\b
    python admin.py cleanup group1 --idle 3600000
    python admin.py cleanup group1 --idle 3600000 --claim-to c1

A consumer with nothing pending is removed. Removing one that holds pending entries would
orphan them (XGROUP DELCONSUMER drops them unacknowledged), so such a consumer is kept,
unless --claim-to names a running consumer (one idle for less than --idle): its pending
entries are first claimed for that consumer (XCLAIM, their delivery counts unchanged), then
it is removed. The new holder processes them when it restarts (it reads its own pending
entries first), or any running consumer claims them after its --claim-idle. On a sharded
stream each shard's group has consumers of its own: they are cleaned up shard by shard.
"""

DELETE_IF_NOTHING_PENDING = """
-- Delete the consumer only if it holds no pending entries, atomically: one that came back and
-- read something since we looked keeps it (XGROUP DELCONSUMER would drop those entries).
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


def hand_over(db, stream: str, group: str, consumer: str, to: str, min_idle: int) -> int:
    """XCLAIM a consumer's pending entries for another one. JUSTID: a handover is not a delivery,
    so the delivery counts stay as they were. Entries used again meanwhile (idle < min_idle) stay."""
    moved, start = 0, "-"
    while rows := db.xpending_range(stream, group, start, "+", 100, consumername=consumer):
        moved += len(db.xclaim(stream, group, to, min_idle, [r["message_id"] for r in rows], justid=True))
        start = "(" + rows[-1]["message_id"].decode()
    return moved


def cleanup(connection, scope, group: str, *, idle: int, claim_to: str | None) -> dict:
    """The document of a cleanup: "consumers", each consumer idle longer than `idle` ms, removed
    or kept (and why), done as it is read; "seen", how many the group has in all.

    On a sharded stream each shard's group has its consumers of its own: each is looked at on its
    own shard (and counted there); --claim-to must be running on some shard.
    """
    db = connection.db
    found = shards_with_group(connection, scope, group)
    members = {shard: {c["name"].decode(): c for c in db.xinfo_consumers(shard.key, group)} for shard in found}
    if claim_to is not None:
        names = list(dict.fromkeys(name for each in members.values() for name in each))
        if claim_to not in names:
            raise UserError(
                f"--claim-to {claim_to}: no such consumer in group {group} "
                f"(its consumers: {', '.join(names) or 'none'})"
            )
        least = min(each[claim_to]["idle"] for each in members.values() if claim_to in each)
        if least > idle:
            raise UserError(f"--claim-to {claim_to}: it has been idle for {duration(least)}; name a running consumer")

    def idle_ones():
        try:
            yield from remove_idle(connection, scope, group, members, idle=idle, claim_to=claim_to)
        except rex.ReadOnlyError:  # (its text names the script's SHA: no use to anyone here)
            raise UserError(f"Redis at {connection.where} is a read-only replica: run cleanup against its master")

    return {"group": group, "consumers": idle_ones(), "seen": sum(map(len, members.values()))}


def remove_idle(connection, scope, group: str, members: dict, *, idle: int, claim_to: str | None):
    """For each consumer idle longer than `idle`: removed ("kept" None), or kept and why; what it
    held handed to `claim_to` first, if given (and how many were)."""
    delete = connection.db.register_script(DELETE_IF_NOTHING_PENDING)
    for shard, each in members.items():
        for name, member in each.items():
            if member["idle"] <= idle or name == claim_to:
                continue
            held = member["pending"]
            seen = {"consumer": name, "shard": shard.key if scope.sharded else None, "idle_ms": member["idle"]}
            if held and claim_to is None:
                yield {**seen, "pending": held, "kept": "holds pending entries", "handed_to": None, "handed": 0}
                continue
            moved = hand_over(connection.db, shard.key, group, name, claim_to, idle) if held else 0
            handed = {"pending": held, "handed_to": claim_to if held else None, "handed": moved}
            if delete(keys=[shard.key], args=[group, name]) == -1:
                yield {**seen, **handed, "kept": "uses its pending entries again"}
                continue
            yield {**seen, **handed, "kept": None}


def render(doc: dict, *, scope):
    """A line per idle consumer, then the counts."""
    removed = kept = 0
    for one in doc["consumers"]:
        name = one["consumer"] + (f" on {one['shard']}" if one["shard"] else "")
        how = f"idle {duration(one['idle_ms'])}"
        if one["kept"] == "holds pending entries":
            yield (
                f"kept {name} ({how}): it holds {plural(one['pending'], 'pending entry')}; "
                "--claim-to <a running consumer> hands them over first"
            )
        elif one["kept"]:
            yield f"kept {name} ({how}): it is using its pending entries again"
        elif one["handed_to"]:
            handed = f"its {plural(one['handed'], 'pending entry')} handed to {one['handed_to']} first"
            yield f"removed {name} ({how}, {handed})"
        else:
            yield f"removed {name} ({how}, nothing pending)"
        removed, kept = removed + (not one["kept"]), kept + bool(one["kept"])
    active = doc["seen"] - removed - kept
    where = f" on {scope.label}, counted per shard" if scope.sharded else ""
    yield f"group {doc['group']}{where}: removed {plural(removed, 'consumer')}, kept {kept}; {active} active left alone"
