"""What `admin.py info` and `admin.py watch` show: the stream, its groups, their consumers, and
what looks wrong, in one document (the same dict is printed as text or as --json).

The numbers come from XINFO STREAM, XINFO GROUPS and XINFO CONSUMERS. Two of them need care:

- A group's lag (entries added to the stream that the group has not read yet) is reported by the
  server from Redis 7.0 on. It is nil when the server cannot work it out (a deleted entry after
  the group's position, or a group created at `$` that has not read since); then, and on 6.2, we
  count the entries after the group's last-delivered ID ourselves (lag_source "counted"). On a
  stream of millions that count stops after ids.COUNT_LIMIT entries: "at least N"
  (lag_at_least), so that info stays quick and watch refreshes on time.
- Trimming (MAXLEN, MINID, XTRIM) removes entries whether or not a group has read them, silently.
  The sign is a group whose lag exceeds the stream's length; a group that had never read at all
  shows it only as a position (0-0) older than what the stream still holds.

What looks wrong (the warnings) is in findings.py.
"""

from __future__ import annotations

from ..ids import COUNT_LIMIT, count_pending, entries_read, id_text, parse_id, split_at
from . import findings, totals
from .keys import stream_kind
from .output import duration, maybe, plural, table

# What `admin.py info --help` says (admin.py declares the command and its options).
HELP = """The stream, each group and each consumer, with warnings where something is wrong.

\b
    python admin.py info
    python admin.py info --stream app:event --json

Shows the stream's length, first and last ID and how many entries were ever added; each
group's consumers, pending count, last-delivered ID and lag (entries it has not read yet);
each consumer's pending count and idle time. It warns when a group lost entries to trimming
before reading them, when a consumer idle longer than --warn-idle still holds pending entries,
when pending entries were trimmed away, and when the dead-letter stream is not empty.

A sharded stream: the totals over its shards, then a row per shard with the node holding it
(with --json: "shards", each shard's own document and its "node"). --maxlen is per shard.
"""


# -- the whole picture -------------------------------------------------------------------------
def snapshot(connection, scope, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document of the stream as it is now (scope.py: its shards and dead letters).

    One stream on one server: the document of that key, as it always was. Sharded, or on a
    cluster: the totals over the shards, plus `shards`, each shard's own document and its node,
    and (sharded) `unsharded`: groups still on the single key of the stream's name.
    """
    docs = [one(connection, shard.key, shard.dlq, cap, warn_idle_ms) for shard in scope.shards]
    if not scope.sharded and not connection.cluster:
        doc = docs[0]
    else:
        for shard, part in zip(scope.shards, docs):
            part["node"] = connection.node_of(shard.key)
        doc = totals.combine(scope.name, scope.dlq_name, docs, cap)
        doc["warnings"] = findings.find_warnings(doc, warn_idle_ms)
        if scope.sharded:
            doc["unsharded"] = unsharded(connection, scope)
        doc["shards"] = docs
        doc["warnings"] += findings.layout_warnings(doc, scope)
    doc["warnings"] += findings.eviction_warnings(connection, scope)
    doc["warnings"] += findings.holding_warnings(connection, doc, scope)
    return doc


def one(connection, stream: str, dlq: str, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document of one stream key: what every key needs asked in one round trip."""
    with connection.db.pipeline(transaction=False) as pipe:
        pipe.type(stream)
        pipe.type(dlq)
        pipe.xlen(dlq)
        pipe.xinfo_stream(stream)  # an error if there is no stream, kept in its place in the reply
        pipe.xinfo_groups(stream)
        kind, dlq_kind, dlq_length, info, groups = pipe.execute(raise_on_error=False)
    exists = stream_kind(connection, stream, kind)
    for reply in (info, groups) if exists else ():
        if isinstance(reply, Exception):
            raise reply
    return gather(
        connection.db,
        stream,
        info=info if exists else None,
        groups=groups if exists else [],
        dlq=dlq,
        dlq_length=dlq_length if stream_kind(connection, dlq, dlq_kind) else 0,
        cap=cap,
        warn_idle_ms=warn_idle_ms,
    )


def gather(db, stream: str, *, info, groups, dlq: str, dlq_length: int, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document from XINFO STREAM and XINFO GROUPS (info None: no such stream), with
    each group's consumers (one more round trip), dead letters and warnings."""
    doc = {
        "stream": stream_view(stream, info, cap),
        "groups": [],
        "dead_letters": {"key": dlq, "length": dlq_length},
        "warnings": [],
    }
    if groups:
        with db.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.xinfo_consumers(stream, group["name"])
            consumers = pipe.execute()
        doc["groups"] = [group_view(db, doc["stream"], group, members) for group, members in zip(groups, consumers)]
    doc["warnings"] = findings.find_warnings(doc, warn_idle_ms)
    return doc


def unsharded(connection, scope) -> dict | None:
    """The groups on the single key named like a sharded stream (`app:event` beside its shards),
    which read nothing the producers add now; None if that key holds no stream or no group."""
    if not scope.whole or connection.db.type(scope.stream) != b"stream":
        return None
    info, groups = connection.db.xinfo_stream(scope.stream), connection.db.xinfo_groups(scope.stream)
    if not groups:
        return None
    doc = gather(connection.db, scope.stream, info=info, groups=groups, dlq="", dlq_length=0, cap=None, warn_idle_ms=0)
    return {"key": scope.stream, "length": doc["stream"]["length"], "groups": doc["groups"]}


def stream_view(stream: str, info: dict | None, cap: int | None) -> dict:
    view = dict.fromkeys(
        ("length", "first_id", "last_id", "last_generated_id", "entries_added", "removed", "max_deleted_id")
    )
    view = {"key": stream, "exists": info is not None, **view, "cap": cap}
    if info is None:
        return view
    added = info.get("entries-added")  # 7.0+: every entry ever added, trimmed or not
    view.update(
        length=info["length"],
        first_id=id_text(info["first-entry"][0]) if info.get("first-entry") else None,
        last_id=id_text(info["last-entry"][0]) if info.get("last-entry") else None,
        last_generated_id=id_text(info["last-generated-id"]),
        entries_added=added,
        removed=None if added is None else added - info["length"],
        max_deleted_id=id_text(info.get("max-deleted-entry-id")),
    )
    return view


def group_view(db, stream: dict, group: dict, members: list[dict]) -> dict:
    name = group["name"].decode()
    last = id_text(group["last-delivered-id"])
    lag, source, unread = group.get("lag"), "server", None
    if lag is None:  # 6.2, or the server cannot tell: count what is still there to read (up to a limit)
        unread = split_at(db, stream["key"], last, stream["length"])
        lag, source = unread.after, "counted"
    trimmed_pending = pending_trimmed(db, stream, name, group["pending"])
    view = {
        "name": name,
        "consumers": [consumer_view(member) for member in members],
        "pending": group["pending"],
        "last_delivered_id": last,
        "entries_read": group.get("entries-read"),
        "lag": lag,
        "lag_source": source,
        "lag_at_least": unread is not None and not unread.exact,
        "trimmed_unread": None,
        "pending_trimmed": trimmed_pending,
        "pending_trimmed_at_least": COUNT_LIMIT <= trimmed_pending < group["pending"],
    }
    view["trimmed_unread"] = trimmed_unread(db, stream, view, unread)
    return view


def consumer_view(member: dict) -> dict:
    return {
        "name": member["name"].decode(),
        "pending": member["pending"],
        "idle_ms": member["idle"],  # since it last read or claimed (tried to, on 7.2+)
        "inactive_ms": member.get("inactive"),  # since it last got something (-1: never); 7.2+ and Valkey
    }


def trimmed_unread(db, stream: dict, group: dict, unread=None) -> int | None:
    """How many entries were trimmed (or deleted) before this group read them; None: unknown.

    Entries the group has not read = entries added after its position - entries still there
    after its position. Redis counts the first part (entries-added - entries-read, 7.0+);
    trimming removes from the old end, so a group whose position is older than the stream's
    first entry has all of the stream still to read. XTRIM does not move max-deleted-entry-id;
    only XDEL does, so that one tells about holes in the middle. `unread`: the count of what
    is after its position (ids.Split), if the lag was counted already; unknown past the limit.
    """
    added = stream["entries_added"]
    if added is None:
        return None  # 6.2 keeps no count of what was added
    last = parse_id(group["last_delivered_id"])
    if last >= parse_id(stream["last_generated_id"]):
        return 0  # it has read everything there ever was
    behind = stream["first_id"] is None or last < parse_id(stream["first_id"])
    if not behind and parse_id(stream["max_deleted_id"] or "0-0") <= last:
        return 0  # nothing after its position was ever removed
    read = entries_read(group["entries_read"], group["last_delivered_id"])
    if read is None:
        return None
    if behind:
        return max(added - read - stream["length"], 0)
    unread = unread or split_at(db, stream["key"], group["last_delivered_id"], stream["length"])
    return max(added - read - unread.after, 0) if unread.exact else None


def pending_trimmed(db, stream: dict, group: str, pending: int) -> int:
    """Pending entries whose data is no longer in the stream (older than its first entry);
    counted up to ids.COUNT_LIMIT (then: at least that many, unless that is all of them)."""
    if not pending or stream["first_id"] is None:
        return pending
    return count_pending(db, stream["key"], group, "-", "(" + stream["first_id"], limit=COUNT_LIMIT)


# -- as text -----------------------------------------------------------------------------------
def render(doc: dict, rate: dict | None = None, scope=None) -> list[str]:
    """The info document as a person reads it, line by line (watch adds the rates; scope names the shards)."""
    stream, dead, per = doc["stream"], doc["dead_letters"], len(doc.get("shards") or [None])
    lines = [f"Stream {scope.label if scope else stream['key']}"]
    if not stream["exists"]:
        lines.append("  does not exist yet (nothing was added to it; is --stream right?)")
    else:
        span = f" (first {stream['first_id']}, last {stream['last_id']})" if stream["length"] else ""
        lines.append(f"  length        {plural(stream['length'], 'entry')}{span}")
        if stream["entries_added"] is not None:
            lines.append(
                f"  added         {stream['entries_added']} in all, {stream['removed']} since trimmed or deleted"
            )
        if rate:
            lines.append(f"  adding        {maybe(rate['added_per_s'])}/s")
        cap = (
            f"MAXLEN {stream['cap']}{' per shard' * (per > 1)}, {stream['length'] * 100 // (stream['cap'] * per)}% full"
            if stream["cap"]
            else "not known (Redis does not store it; pass --maxlen or set STREAM_MAXLEN)"
        )
        lines.append(f"  cap           {cap}")
    lines.append(f"  dead letters  {plural(dead['length'], 'entry')} in {scope.dlq_label if scope else dead['key']}")
    if doc.get("shards"):
        lines += ["", "Shards", *shards_table(doc["shards"], scope)]

    lines += ["", "Groups"]
    if doc["groups"]:
        headers = ["GROUP", "CONSUMERS", "PENDING", "LAST DELIVERED", "LAG"] + (["ACKED/S"] if rate else [])
        rows = []
        for g in doc["groups"]:
            lag = lag_text(g) + " (counted)" * (g["lag_source"] == "counted")
            row = [g["name"], len(g["consumers"]), g["pending"], g["last_delivered_id"], lag]
            if rate:
                row.append(maybe(rate["acknowledged_per_s"].get(g["name"])))
            rows.append(row)
        lines += table(headers, rows)
    else:
        lines.append("  none yet (`consumer.py GROUP CONSUMER` creates one)")
    if doc.get("unsharded"):
        on = ", ".join(f"{g['name']} (lag {lag_text(g)})" for g in doc["unsharded"]["groups"])
        lines.append(f"  groups on the unsharded key {doc['unsharded']['key']}: {on}")

    members = [(g["name"], m) for g in doc["groups"] for m in g["consumers"]]
    if members:
        lines += ["", "Consumers"]
        lines += table(
            ["GROUP", "CONSUMER", "PENDING", "IDLE", "INACTIVE"],
            [
                [
                    group,
                    m["name"],
                    m["pending"],
                    duration(m["idle_ms"]),
                    inactive(m["inactive_ms"]),
                ]
                for group, m in members
            ],
        )

    lines += ["", "Warnings"]
    lines += [f"  ! {w['message']}" for w in doc["warnings"]] or ["  none"]
    return lines


def shards_table(docs: list[dict], scope) -> list[str]:
    """A row per shard: where it is and what it holds."""
    rows = []
    for shard, doc in zip(scope.shards, docs):
        groups = doc["groups"]
        rows.append(
            [
                shard.index,
                shard.key,
                doc["node"],
                doc["stream"]["length"] or 0,
                sum(g["pending"] for g in groups),
                lag_text(totals.group_total("", groups)) if groups else 0,
                doc["dead_letters"]["length"],
            ]
        )
    return table(["SHARD", "KEY", "NODE", "LENGTH", "PENDING", "LAG", "DEAD LETTERS"], rows)


def lag_text(group: dict) -> str:
    """`12`, or `at least 100000` where counting stopped at the limit, or `?` (unknown)."""
    return "at least " * group["lag_at_least"] + maybe(group["lag"])


def inactive(ms: int | None) -> str:
    """INACTIVE as a person reads it: n/a (Redis 7.0 does not say), never (nothing delivered yet), 2.3s."""
    return "n/a" if ms is None else "never" if ms < 0 else duration(ms)
