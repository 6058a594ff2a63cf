"""`admin.py group`: create a consumer group, move its position (rewind, or skip ahead), delete
it, list them.

A group's position is its last-delivered ID: it reads (`>`) the entries after it. Creating it at
`$` skips everything the stream holds now, at `0` reads it all; XGROUP SETID moves the position
either way (the entries between become unread again, or are skipped), and leaves the pending
entries where they are. On a sharded stream the group is the same-named group of every shard:
each command does its XGROUP on each shard (on a cluster, on the node that holds it). The counts
it says are capped like info's (ids.COUNT_LIMIT: "at least").

These functions return what to say and raise telling.UserError; admin.py prints and exits.
"""

from __future__ import annotations

import functools

import redis.exceptions as rex

from ..ids import COUNT_LIMIT, count_entries, id_text, parse_id, split_at
from ..telling import UsageError, UserError
from .keys import group_names, held, shards_with_group
from .output import plural, table


def errors_said(command):
    """A Redis error in the command: one line naming the stream (connection.errors), exit 1."""

    @functools.wraps(command)
    def said(connection, scope, *args):
        with connection.errors(key=scope.name):
            return command(connection, scope, *args)

    return said


def full_id(position: str) -> str:
    """`1700000000000` as `1700000000000-0`, as XGROUP reads it (XRANGE would read the time alone
    as its first or its last entry, depending on the end)."""
    return position if position == "$" or "-" in position else f"{position}-0"


def amount(n: int, exact: bool, noun: str = "entry") -> str:
    return "at least " * (not exact) + plural(n, noun)


def where(scope, shards) -> str:
    """The stream, or the shards of it a command acted on when that is not all of them."""
    if len(shards) == len(scope.shards):
        return scope.label
    return f"shard{'s' * (len(shards) > 1)} {', '.join(str(s.index) for s in shards)} of {scope.label}"


@errors_said
def create(connection, scope, group: str, start: str) -> str:
    """XGROUP CREATE ... MKSTREAM on every shard that has no such group yet; what it skips."""
    db, asked, start = connection.db, start, full_id(start)
    have = [shard for shard in held(connection, scope) if group in group_names(db, shard.key)]
    if len(have) == len(scope.shards):
        raise UserError(
            f"group {group} exists already on {scope.label}: `admin.py group rewind {group} TO` moves it, "
            f"`admin.py group delete {group}` deletes it"
        )
    todo = [shard for shard in scope.shards if shard not in have]
    there = skipped = after = 0
    exact = True
    for shard in todo:
        with db.pipeline(transaction=True) as tx:  # the length the group found, nothing added between
            tx.xgroup_create(shard.key, group, id=start, mkstream=True)
            tx.xlen(shard.key)
            try:
                _, length = tx.execute()
            except rex.ResponseError as exc:
                raise refused(exc, group, scope, asked)
        there += length
        if start == "$":
            skipped += length
        else:
            split = split_at(db, shard.key, start, length)
            skipped, after, exact = skipped + split.before, after + split.after, exact and split.exact
    had = f" (shards {', '.join(str(s.index) for s in have)} had it already: left as they were)" if have else ""
    said = f"created group {group} on {where(scope, todo)}{had}"
    if start == "$":
        return f"{said} at $: it skips the {plural(there, 'entry')} there now and reads what is added from now on"
    if skipped == 0 and exact:
        return f"{said} at {asked}: it reads the {plural(there, 'entry')} there now, then what is added"
    return (
        f"{said} after {asked}: it skips {amount(skipped, exact)} (up to that ID) and reads "
        f"{amount(after, exact)} after it, then what is added"
    )


def refused(exc: rex.ResponseError, group: str, scope, start: str) -> UserError:
    text = str(exc)
    if text.startswith("BUSYGROUP"):
        return UserError(f"group {group} exists already on {scope.label} (created meanwhile)")
    if "Invalid stream ID" in text:
        return UsageError(f"{start}: Redis refuses it as a stream ID (use $, 0 or an ID like 1700000000000-0)")
    return UserError(f"Redis refused to create group {group} on {scope.label}: {text}")


@errors_said
def rewind(connection, scope, group: str, to: str) -> str:
    """XGROUP SETID on every shard that has the group; how many entries are unread again, or skipped."""
    db, asked, to = connection.db, to, full_id(to)
    found = shards_with_group(connection, scope, group)
    again = skipped = 0
    exact = True
    for shard in found:
        [old] = [id_text(g["last-delivered-id"]) for g in db.xinfo_groups(shard.key) if g["name"].decode() == group]
        new = id_text(db.xinfo_stream(shard.key)["last-generated-id"]) if to == "$" else to
        try:
            db.xgroup_setid(shard.key, group, new)
        except rex.ResponseError as exc:
            raise UsageError(f"{asked}: Redis refuses it as a position of group {group} ({exc})")
        low, high = sorted((old, new), key=parse_id)
        n = count_entries(db, shard.key, "(" + low, high, limit=COUNT_LIMIT) if low != high else 0
        exact = exact and n < COUNT_LIMIT
        if parse_id(new) < parse_id(old):
            again += n
        else:
            skipped += n
    said = []
    if again or not skipped:
        said.append(f"{amount(again, exact)} unread again (its pending entries stay pending)")
    if skipped:
        said.append(f"{amount(skipped, exact)} skipped: the group will not read them")
    verb = "moved" if skipped else "rewound"
    return f"{verb} group {group} on {where(scope, found)} to {asked}: {'; '.join(said)}"


@errors_said
def delete(connection, scope, group: str, confirm) -> str:
    """XGROUP DESTROY on every shard that has the group, once `confirm(question)` says yes."""
    db = connection.db
    found = shards_with_group(connection, scope, group)
    pending = sum(g["pending"] for shard in found for g in db.xinfo_groups(shard.key) if g["name"].decode() == group)
    with db.pipeline(transaction=False) as pipe:
        for shard in found:
            pipe.xinfo_consumers(shard.key, group)
        consumers = {c["name"] for each in pipe.execute() for c in each}
    what = f"group {group} of {where(scope, found)}"
    if confirm is not None:
        confirm(
            f"delete {what}, with its {plural(len(consumers), 'consumer')} and {plural(pending, 'pending entry')} "
            "(delivered, never acknowledged: nobody in the group will process them)?"
        )
    for shard in found:
        db.xgroup_destroy(shard.key, group)
    return f"deleted {what} ({plural(pending, 'pending entry')} went with it)"


@errors_said
def listing(connection, scope) -> tuple[dict, str]:
    """`group list`: (the document, the text) of every group, from XINFO GROUPS alone (the lag is
    the server's; `admin.py info` counts it where the server cannot tell)."""
    db, seen = connection.db, {}
    for shard in held(connection, scope):
        for g in db.xinfo_groups(shard.key):
            seen.setdefault(g["name"].decode(), []).append(g)
    groups = [
        {
            "name": name,
            "shards": len(each),
            "consumers": max(g["consumers"] for g in each),
            "pending": sum(g["pending"] for g in each),
            "last_delivered_id": id_text(max((g["last-delivered-id"] for g in each), key=parse_id)),
            "lag": None if any(g.get("lag") is None for g in each) else sum(g["lag"] for g in each),
        }
        for name, each in sorted(seen.items())
    ]
    lines = [f"Groups of {scope.label}"]
    if not groups:
        return {"stream": scope.name, "groups": []}, lines[0] + "\n  none yet"
    sharded = scope.sharded
    headers = ["GROUP"] + ["SHARDS"] * sharded + ["CONSUMERS", "PENDING", "LAST DELIVERED", "LAG"]
    rows = [
        [g["name"]]
        + [f"{g['shards']}/{len(scope.shards)}"] * sharded
        + [g["consumers"], g["pending"], g["last_delivered_id"], "?" if g["lag"] is None else g["lag"]]
        for g in groups
    ]
    lines += table(headers, rows)
    if any(g["lag"] is None for g in groups):
        lines.append("  (? the server cannot tell the lag: `admin.py info` counts it)")
    return {"stream": scope.name, "groups": groups}, "\n".join(lines)
