"""`admin.py group`: create a consumer group, move its position (rewind, or skip ahead), delete
it, list them.

A group's position is its last-delivered ID: it reads (`>`) the entries after it. Creating it at
`$` skips everything the stream holds now, at `0` reads it all; XGROUP SETID moves the position
either way (the entries between become unread again, or are skipped), and leaves the pending
entries where they are. On a sharded stream the group is the same-named group of every shard:
each command does its XGROUP on each shard (on a cluster, on the node that holds it). The counts
it says are capped like info's (ids.COUNT_LIMIT: "at least").

These functions return a document (and render_* its text) and raise telling.UserError; admin.py
prints and exits.
"""

from __future__ import annotations

import redis.exceptions as rex

from ..ids import COUNT_LIMIT, count_entries, id_text, parse_id, split_at
from ..telling import UsageError, UserError
from .keys import group_names, held, shards_with_group
from .output import plural, table

# What `admin.py group --help` and each `group ... --help` say (admin.py declares the commands and options).
HELP = """Consumer groups: create one, move its position (rewind or skip), delete it, list them.

\b
    python admin.py group list
    python admin.py group create audit --start-from 0
    python admin.py group rewind audit 0
    python admin.py group delete grup1

consumer.py creates its group itself; these are for the rest (a group made ahead of its
consumers, processing again, skipping a backlog). Sharded: the group of every shard.
"""

LIST_HELP = """Every group of the stream: consumers, pending entries, position and lag.

\b
    python admin.py group list
"""

CREATE_HELP = """Create GROUP (and the stream, if need be): at $ it reads only what is added from now on.

\b
    python admin.py group create audit
    python admin.py group create audit --start-from 0

Says how many entries it skips: all there are at $, none at 0, those up to the ID given.
On a sharded stream it creates the group on every shard that has none yet.
"""

REWIND_HELP = """Move GROUP to TO (0, $ or an ID): back, to process entries again, or ahead, to skip them.

\b
    python admin.py group rewind audit 0
    python admin.py group rewind audit 1700000000000-0

XGROUP SETID; says how many entries that makes unread again, or skips. Entries pending with
its consumers stay pending (each consumer re-reads its own on restart).
"""

DELETE_HELP = """Delete GROUP, its consumers and its pending entries (XGROUP DESTROY); asks first.

\b
    python admin.py group delete grup1
"""


def full_id(position: str) -> str:
    """`1700000000000` as `1700000000000-0`, as XGROUP reads it (XRANGE would read the time alone
    as its first or its last entry, depending on the end)."""
    return position if position == "$" or "-" in position else f"{position}-0"


def amount(n: int, exact: bool, noun: str = "entry") -> str:
    return "at least " * (not exact) + plural(n, noun)


def where(scope, indexes: list[int]) -> str:
    """The stream, or the shards of it a command acted on when that is not all of them."""
    if len(indexes) == len(scope.shards):
        return scope.label
    return f"shard{'s' * (len(indexes) > 1)} {', '.join(map(str, indexes))} of {scope.label}"


def create(connection, scope, group: str, start: str) -> dict:
    """XGROUP CREATE ... MKSTREAM on every shard that has no such group yet: the shards it was
    created on, those that had it, and how many entries it skips and has to read."""
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
    return {
        "group": group,
        "start": asked,
        "created_on": [shard.index for shard in todo],
        "had_it": [shard.index for shard in have],
        "entries": there,
        "skipped": skipped,
        "to_read": after,
        "exact": exact,
    }


def render_create(doc: dict, *, scope) -> list[str]:
    group, asked, had = doc["group"], doc["start"], doc["had_it"]
    had = f" (shards {', '.join(map(str, had))} had it already: left as they were)" if had else ""
    said = f"created group {group} on {where(scope, doc['created_on'])}{had}"
    there, skipped, exact = doc["entries"], doc["skipped"], doc["exact"]
    if asked == "$":
        return [f"{said} at $: it skips the {plural(there, 'entry')} there now and reads what is added from now on"]
    if skipped == 0 and exact:
        return [f"{said} at {asked}: it reads the {plural(there, 'entry')} there now, then what is added"]
    return [
        f"{said} after {asked}: it skips {amount(skipped, exact)} (up to that ID) and reads "
        f"{amount(doc['to_read'], exact)} after it, then what is added"
    ]


def refused(exc: rex.ResponseError, group: str, scope, start: str) -> UserError:
    text = str(exc)
    if text.startswith("BUSYGROUP"):
        return UserError(f"group {group} exists already on {scope.label} (created meanwhile)")
    if "Invalid stream ID" in text:
        return UsageError(f"{start}: Redis refuses it as a stream ID (use $, 0 or an ID like 1700000000000-0)")
    return UserError(f"Redis refused to create group {group} on {scope.label}: {text}")


def rewind(connection, scope, group: str, to: str) -> dict:
    """XGROUP SETID on every shard that has the group: how many entries are unread again, or skipped."""
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
    shards = [shard.index for shard in found]
    return {"group": group, "to": asked, "shards": shards, "unread_again": again, "skipped": skipped, "exact": exact}


def render_rewind(doc: dict, *, scope) -> list[str]:
    again, skipped, exact, said = doc["unread_again"], doc["skipped"], doc["exact"], []
    if again or not skipped:
        said.append(f"{amount(again, exact)} unread again (its pending entries stay pending)")
    if skipped:
        said.append(f"{amount(skipped, exact)} skipped: the group will not read them")
    verb = "moved" if skipped else "rewound"
    return [f"{verb} group {doc['group']} on {where(scope, doc['shards'])} to {doc['to']}: {'; '.join(said)}"]


def delete(connection, scope, group: str, confirm) -> dict:
    """XGROUP DESTROY on every shard that has the group, once `confirm(question)` returned (it
    raises to say no; None: do not ask)."""
    db = connection.db
    found = shards_with_group(connection, scope, group)
    pending = sum(g["pending"] for shard in found for g in db.xinfo_groups(shard.key) if g["name"].decode() == group)
    with db.pipeline(transaction=False) as pipe:
        for shard in found:
            pipe.xinfo_consumers(shard.key, group)
        consumers = {c["name"] for each in pipe.execute() for c in each}
    shards = [shard.index for shard in found]
    if confirm is not None:
        confirm(
            f"delete group {group} of {where(scope, shards)}, with its {plural(len(consumers), 'consumer')} and "
            f"{plural(pending, 'pending entry')} "
            "(delivered, never acknowledged: nobody in the group will process them)?"
        )
    for shard in found:
        db.xgroup_destroy(shard.key, group)
    return {"group": group, "shards": shards, "pending": pending}


def render_delete(doc: dict, *, scope) -> list[str]:
    what = f"group {doc['group']} of {where(scope, doc['shards'])}"
    return [f"deleted {what} ({plural(doc['pending'], 'pending entry')} went with it)"]


def listing(connection, scope) -> dict:
    """`group list`: the document of every group, from XINFO GROUPS alone (the lag is the
    server's; `admin.py info` counts it where the server cannot tell)."""
    seen = {}
    for shard in held(connection, scope):
        for g in connection.db.xinfo_groups(shard.key):
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
    return {"stream": scope.name, "groups": groups}


def render_listing(doc: dict, *, scope) -> list[str]:
    lines, groups, sharded = [f"Groups of {scope.label}"], doc["groups"], scope.sharded
    if not groups:
        return [*lines, "  none yet"]
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
    return lines
