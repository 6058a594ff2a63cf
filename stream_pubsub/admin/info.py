"""What `admin.py info` and `admin.py watch` show: the stream, its groups, their consumers, and
what looks wrong, in one document (the same dict is printed as text or as --json).

The numbers come from XINFO STREAM, XINFO GROUPS and XINFO CONSUMERS. Two of them need care:

- A group's lag (entries added to the stream that the group has not read yet) is reported by the
  server from Redis 7.0 on. It is nil when the server cannot work it out (a deleted entry after
  the group's position, or a group created at `$` that has not read since); then, and on 6.2, we
  count the entries after the group's last-delivered ID ourselves (lag_source "counted").
- Trimming (MAXLEN, MINID, XTRIM) removes entries whether or not a group has read them, silently.
  The sign is a group whose lag exceeds the stream's length; a group that had never read at all
  shows it only as a position (0-0) older than what the stream still holds.
"""

from __future__ import annotations

from ..ids import count_entries, count_pending, id_text, parse_id
from . import totals
from .keys import is_stream
from .output import duration, maybe, plural, table, were


# -- the whole picture -------------------------------------------------------------------------
def snapshot(connection, scope, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document of the stream as it is now (scope.py: its shards and dead letters).

    One stream on one server: the document of that key, as it always was. Sharded, or on a
    cluster: the totals over the shards, plus `shards`, each shard's own document and its node.
    """
    docs = [one(connection, shard.key, shard.dlq, cap, warn_idle_ms) for shard in scope.shards]
    if not scope.sharded and not connection.cluster:
        return docs[0]
    for shard, doc in zip(scope.shards, docs):
        doc["node"] = connection.node_of(shard.key)
    doc = totals.combine(scope.name, scope.dlq_name, docs, cap)
    doc["warnings"] = find_warnings(doc, warn_idle_ms)
    return {**doc, "shards": docs}


def one(connection, stream: str, dlq: str, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document of one stream key."""
    return gather(
        connection.db,
        stream,
        exists=is_stream(connection, stream),
        dlq=dlq,
        dlq_length=connection.db.xlen(dlq) if is_stream(connection, dlq) else 0,
        cap=cap,
        warn_idle_ms=warn_idle_ms,
    )


def gather(db, stream: str, *, exists: bool, dlq: str, dlq_length: int, cap: int | None, warn_idle_ms: int) -> dict:
    """The info document: stream, groups (with their consumers), dead letters, warnings."""
    doc = {
        "stream": stream_view(db, stream, exists, cap),
        "groups": [],
        "dead_letters": {"key": dlq, "length": dlq_length},
        "warnings": [],
    }
    if exists:
        groups = db.xinfo_groups(stream)
        with db.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.xinfo_consumers(stream, group["name"])
            consumers = pipe.execute()
        doc["groups"] = [group_view(db, doc["stream"], group, members) for group, members in zip(groups, consumers)]
    doc["warnings"] = find_warnings(doc, warn_idle_ms)
    return doc


def stream_view(db, stream: str, exists: bool, cap: int | None) -> dict:
    view = dict.fromkeys(
        ("length", "first_id", "last_id", "last_generated_id", "entries_added", "removed", "max_deleted_id")
    )
    view = {"key": stream, "exists": exists, **view, "cap": cap}
    if not exists:
        return view
    info = db.xinfo_stream(stream)
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
    lag, source = group.get("lag"), "server"
    if lag is None:  # 6.2, or the server cannot tell: count what is still there to read
        lag, source = count_entries(db, stream["key"], "(" + last), "counted"
    view = {
        "name": name,
        "consumers": [consumer_view(member) for member in members],
        "pending": group["pending"],
        "last_delivered_id": last,
        "entries_read": group.get("entries-read"),
        "lag": lag,
        "lag_source": source,
        "trimmed_unread": None,
        "pending_trimmed": pending_trimmed(db, stream, name, group["pending"]),
    }
    view["trimmed_unread"] = trimmed_unread(db, stream, view)
    return view


def consumer_view(member: dict) -> dict:
    return {
        "name": member["name"].decode(),
        "pending": member["pending"],
        "idle_ms": member["idle"],  # since it last read or claimed (tried to, on 7.2+)
        "inactive_ms": member.get("inactive"),  # since it last got something (-1: never); 7.2+ and Valkey
    }


def trimmed_unread(db, stream: dict, group: dict) -> int | None:
    """How many entries were trimmed (or deleted) before this group read them; None: unknown.

    Entries the group has not read = entries added after its position - entries still there
    after its position. Redis counts the first part (entries-added - entries-read, 7.0+);
    trimming removes from the old end, so a group whose position is older than the stream's
    first entry has all of the stream still to read. XTRIM does not move max-deleted-entry-id;
    only XDEL does, so that one tells about holes in the middle.
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
    read = group["entries_read"]
    if read is None and last == (0, 0):
        read = 0  # a group that never read anything
    if read is None:
        return None
    after = stream["length"] if behind else count_entries(db, stream["key"], "(" + group["last_delivered_id"])
    return max(added - read - after, 0)


def pending_trimmed(db, stream: dict, group: str, pending: int) -> int:
    """Pending entries whose data is no longer in the stream (older than its first entry)."""
    if not pending or stream["first_id"] is None:
        return pending
    return count_pending(db, stream["key"], group, "-", "(" + stream["first_id"])


# -- what looks wrong ------------------------------------------------------------------------
def warning(kind: str, message: str, *, group=None, consumer=None, count=None) -> dict:
    return {"kind": kind, "group": group, "consumer": consumer, "count": count, "message": message}


def find_warnings(doc: dict, warn_idle_ms: int) -> list[dict]:
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
        if group["pending_trimmed"]:
            found.append(
                warning(
                    "pending_trimmed",
                    f"group {name}: {plural(group['pending_trimmed'], 'pending entry')} "
                    f"{were(group['pending_trimmed'])} "
                    "trimmed from the stream before being acknowledged; their data is gone",
                    group=name,
                    count=group["pending_trimmed"],
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


# -- as text -----------------------------------------------------------------------------------
def render(doc: dict, rate: dict | None = None, scope=None) -> str:
    """The info document as a person reads it (watch adds the rates; scope names the shards)."""
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
            lag = f"{g['lag']} (counted)" if g["lag_source"] == "counted" else str(g["lag"])
            row = [g["name"], len(g["consumers"]), g["pending"], g["last_delivered_id"], lag]
            if rate:
                row.append(maybe(rate["acknowledged_per_s"].get(g["name"])))
            rows.append(row)
        lines += table(headers, rows)
    else:
        lines.append("  none yet (`consumer.py GROUP CONSUMER` creates one)")

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
    return "\n".join(lines)


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
                sum(g["lag"] for g in groups),
                doc["dead_letters"]["length"],
            ]
        )
    return table(["SHARD", "KEY", "NODE", "LENGTH", "PENDING", "LAG", "DEAD LETTERS"], rows)


def inactive(ms: int | None) -> str:
    """INACTIVE as a person reads it: n/a (Redis 7.0 does not say), never (nothing delivered yet), 2.3s."""
    return "n/a" if ms is None else "never" if ms < 0 else duration(ms)
