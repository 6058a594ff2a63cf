"""`admin.py cleanup`: remove a group's consumers that are gone, without orphaning their entries.

XGROUP DELCONSUMER drops a consumer's pending entries unacknowledged, so a consumer that holds
some is removed only after they were handed to a running one (XCLAIM).
"""

from __future__ import annotations

import click
import redis.exceptions as rex

from ..telling import UserError
from .keys import shards_with_group
from .output import duration, plural

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


def cleanup(connection, scope, group: str, *, idle: int, claim_to: str | None) -> None:
    """Remove the consumers idle longer than `idle` ms; say what was removed and what was kept.

    On a sharded stream each shard's group has its consumers of its own: each is looked at on its
    own shard (and counted there); --claim-to must be running on some shard.
    """
    with connection.errors(key=scope.name):
        try:
            removed, kept, seen = remove_idle(connection, scope, group, idle=idle, claim_to=claim_to)
        except rex.ReadOnlyError:  # (its text names the script's SHA: no use to anyone here)
            raise UserError(f"Redis at {connection.where} is a read-only replica: run cleanup against its master")
    active = seen - removed - kept
    where = f" on {scope.label}, counted per shard" if scope.sharded else ""
    click.echo(f"group {group}{where}: removed {plural(removed, 'consumer')}, kept {kept}; {active} active left alone")


def remove_idle(connection, scope, group: str, *, idle: int, claim_to: str | None) -> tuple[int, int, int]:
    """(removed, kept, seen): the consumers removed, those kept because of their pending entries."""
    db, removed, kept, seen = connection.db, 0, 0, 0
    found = shards_with_group(connection, scope, group)
    members = {shard: {c["name"].decode(): c for c in db.xinfo_consumers(shard.key, group)} for shard in found}
    if claim_to is not None:
        names = list(dict.fromkeys(name for each in members.values() for name in each))
        if claim_to not in names:
            raise click.ClickException(
                f"--claim-to {claim_to}: no such consumer in group {group} "
                f"(its consumers: {', '.join(names) or 'none'})"
            )
        least = min(each[claim_to]["idle"] for each in members.values() if claim_to in each)
        if least > idle:
            raise click.ClickException(
                f"--claim-to {claim_to}: it has been idle for {duration(least)}; name a running consumer"
            )
    delete = db.register_script(DELETE_IF_NOTHING_PENDING)
    for shard, each in members.items():
        on = f" on {shard.key}" if scope.sharded else ""
        seen += len(each)
        for name, member in each.items():
            if member["idle"] <= idle or name == claim_to:
                continue
            held, how = member["pending"], f"idle {duration(member['idle'])}"
            if held and claim_to is None:
                kept += 1
                click.echo(
                    f"kept {name}{on} ({how}): it holds {plural(held, 'pending entry')}; "
                    "--claim-to <a running consumer> hands them over first"
                )
                continue
            moved = hand_over(db, shard.key, group, name, claim_to, idle) if held else 0
            if delete(keys=[shard.key], args=[group, name]) == -1:
                kept += 1
                click.echo(f"kept {name}{on} ({how}): it is using its pending entries again")
                continue
            removed += 1
            handed = f"its {plural(moved, 'pending entry')} handed to {claim_to} first" if held else "nothing pending"
            click.echo(f"removed {name}{on} ({how}, {handed})")
    return removed, kept, seen
