"""Trimming: MAXLEN and XTRIM remove the oldest entries whether or not a group has read them.

Two things here. The consumer counts what trimming removed before its group read it
(`UnreadTrims`), so a loss is said, not silent. And `admin.py trim --safe` trims the tutorial's
way (`XTRIM app:events MAXLEN 10000` as a scheduled job) without removing what a group still needs
(`trim_stream`).

An entry a group has not been delivered yet is, once trimmed, never processed; an entry
delivered but not acknowledged comes back to its consumer empty. The safe trim works by a cut:
the ID below which entries go (MAXLEN N becomes "below the N-th newest entry"). The trim itself
is always XTRIM MINID <cut>, so entries added while we look are newer than the cut and never
removed. With --safe the cut is lowered to the oldest entry some group still needs: the one
after its last-delivered ID, or its oldest pending entry still in the stream. Groups only move
forward, so a cut that is safe when computed stays safe.
"""

from __future__ import annotations

from .ids import PAGE, count_entries, count_pending, entries_read, id_text, next_id, parse_id
from .replies import as_dict


def cut_for_maxlen(db, stream: str, maxlen: int, length: int) -> str | None:
    """The MINID that keeps the newest `maxlen` entries; None when there is nothing to remove."""
    if length <= maxlen:
        return None
    remove = length - maxlen
    if maxlen == 0 or remove <= maxlen:  # fewer to skip from the old end
        return next_id(nth_id(db, stream, remove, newest_first=False))
    return id_text(nth_id(db, stream, maxlen, newest_first=True))


def nth_id(db, stream: str, n: int, *, newest_first: bool) -> bytes:
    """The ID of the n-th oldest (or newest) entry, paging through the stream."""
    start = "+" if newest_first else "-"
    while True:
        if newest_first:
            page = db.xrevrange(stream, start, "-", count=min(n, PAGE))
        else:
            page = db.xrange(stream, start, "+", count=min(n, PAGE))
        if n <= len(page):
            return page[n - 1][0]
        n -= len(page)
        start = "(" + page[-1][0].decode()


def group_needs(db, stream: str, first_id: str, cut: str) -> list[dict]:
    """For each group: the oldest entry it still needs, and how many entries below the cut it
    has not read yet (unread) or read but not acknowledged (unacknowledged)."""
    needs = []
    for group in db.xinfo_groups(stream):
        name, last = group["name"].decode(), id_text(group["last-delivered-id"])
        oldest = next_id(last)  # never delivered: everything after the last-delivered ID
        pending = db.xpending_range(stream, name, first_id, "+", 1)  # pending with data still there
        if pending and parse_id(pending[0]["message_id"]) < parse_id(oldest):
            oldest = id_text(pending[0]["message_id"])
        needs.append(
            {
                "group": name,
                "oldest_needed": oldest,
                "unread": count_entries(db, stream, "(" + last, "(" + cut),
                "unacknowledged": count_pending(db, stream, name, first_id, "(" + cut),
            }
        )
    return needs


def trim_stream(db, stream: str, *, maxlen: int | None, minid: str | None, safe: bool) -> dict:
    """Trim the stream; with safe=True keep every entry some group still needs.

    Returns what happened: removed, kept (entries the plain trim would have removed but a group
    still needed; 0 without safe), left (the stream's length after), and per group what it had
    not read or acknowledged below the asked-for cut (with safe: kept; without: removed).
    """
    length = db.xlen(stream)
    first = db.xrange(stream, count=1)
    result = {"removed": 0, "kept": 0, "left": length, "needs": []}
    if not first:
        return result
    first_id = id_text(first[0][0])
    cut = minid if maxlen is None else cut_for_maxlen(db, stream, maxlen, length)
    if cut is None or parse_id(cut) <= parse_id(first_id):
        return result
    result["needs"] = [n for n in group_needs(db, stream, first_id, cut) if n["unread"] or n["unacknowledged"]]
    if safe:
        lowest = min([cut] + [n["oldest_needed"] for n in result["needs"]], key=parse_id)
        if lowest != cut:
            result["kept"] = count_entries(db, stream, lowest, "(" + cut)
            cut = lowest
    result["removed"] = db.xtrim(stream, minid=cut, approximate=False)
    result["left"] = db.xlen(stream)
    return result


class UnreadTrims:
    """Counting, for one consumer of a group, what MAXLEN/XTRIM removed before the group read it.

    GroupStream.read sends one MULTI/EXEC, so nothing happens between the look and the read: the
    stream's info and the group's, the read (inside MULTI it never blocks), the group's info
    again. Entries were trimmed unread only if the group's last-delivered ID is older than the
    stream's first entry. Redis 7.2+/Valkey then move the group's entries-read counter past the
    gap (it grows by more than we read); Redis 7.0 does not, so we compute the gap from
    entries-added, XLEN and the counter, and remember that its counter now lags by that much.
    The replies are raw (bytes keys).
    """

    def __init__(self, stream: str, group: str):
        self.stream, self.group = stream, group
        self.counter_behind = 0  # how far Redis 7.0's entries-read lags after gaps we counted

    def gap(self, info, before: dict | None, after: dict | None, read_now: int) -> int:
        info = as_dict(info)
        first = info.get(b"first-entry")
        if not first or not before or parse_id(before[b"last-delivered-id"]) >= parse_id(first[0]):
            return 0  # no gap
        read = entries_read(before.get(b"entries-read"), before[b"last-delivered-id"])
        if read is None:
            return 0  # the server cannot tell (entries deleted with XDEL in between)
        moved = ((after or {}).get(b"entries-read") or 0) - read
        if moved > read_now:
            return moved - read_now
        gap = info[b"entries-added"] - info[b"length"] - read - self.counter_behind
        self.counter_behind += max(gap, 0)
        return max(gap, 0)

    def warning(self, gap: int) -> str:
        return (
            f"{gap} entries were trimmed from {self.stream} before group {self.group} "
            "read them (its MAXLEN is too small for this pace)"
        )

    def lag(self, group: dict | None) -> int | None:
        """The group's lag (XINFO GROUPS), corrected for what Redis 7.0 still counts after a gap."""
        lag = (group or {}).get(b"lag")
        return None if lag is None else max(0, lag - self.counter_behind)
