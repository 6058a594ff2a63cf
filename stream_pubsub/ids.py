"""Stream entry IDs, `<milliseconds>-<sequence>`, counting what lies between two of them, and
reading a range a page at a time.

IDs compare by number, not by text (`9-0` < `10-0`), and Redis has no O(1) count of a range
of a stream, so counting pages through it: on a stream of millions of entries that takes
seconds, so what admin.py counts to show (a lag the server cannot tell) stops after
COUNT_LIMIT entries and says "at least". No read asks for more than PAGE entries at once: one
unbounded XRANGE of a big stream blocks Redis while it builds the reply, and the reply has to
fit in memory twice (Redis's output buffer, then the client).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAGE = 1000  # entries per XRANGE / XREVRANGE / XPENDING page
COUNT_LIMIT = 100_000  # entries one count reads at most (admin.py info: per group, per call), ~0.2 s

# What a person types for an ID, checked before Redis sees it (Redis's own refusal names no option).
_ID = r"\d+(-\d+)?"  # 1700000000000-0, or the time alone (its first or last entry, by context)
ID = re.compile(rf"^{_ID}$")
BOUND = re.compile(rf"^(\(?{_ID}|[-+])$")  # an XRANGE bound: an ID, `(ID` to leave it out, - or +
NEW_ID = re.compile(r"^\d+(-(\d+|\*))?$")  # an XADD ID: also <milliseconds>-* (Redis 7+ picks the sequence)


def is_position(text: str) -> bool:
    """A group's position as a person gives it: $ (the end), 0 (the start) or an ID."""
    return text == "$" or ID.match(text) is not None


def parse_id(raw: bytes | str) -> tuple[int, int]:
    """`1700000000000-3` as (1700000000000, 3), so IDs compare by number, not by text."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def entries_read(counter: int | None, last_delivered_id: bytes | str) -> int | None:
    """A group's entries-read (XINFO GROUPS, 7.0+), with the case Redis leaves out: a group that
    never read anything reports nil, not 0. None: the server cannot tell (6.2, or entries deleted
    after the group's position)."""
    if counter is None and parse_id(last_delivered_id) == (0, 0):
        return 0
    return counter


def next_id(raw: bytes | str) -> str:
    """The smallest ID after this one (for an inclusive bound that means "after")."""
    ms, seq = parse_id(raw)
    return f"{ms}-{seq + 1}"


def read_range(db, stream: str, start: str = "-", end: str = "+", *, reverse: bool = False, limit: int | None = None):
    """The entries between two IDs (XRANGE bounds, `(` for exclusive), oldest first (reverse:
    newest first, XREVRANGE), read PAGE at a time as the caller goes; at most `limit` of them."""
    taken = 0
    while limit is None or taken < limit:
        want = PAGE if limit is None else min(PAGE, limit - taken)
        page = db.xrevrange(stream, end, start, count=want) if reverse else db.xrange(stream, start, end, count=want)
        yield from page
        taken += len(page)
        if len(page) < want:
            return
        after = "(" + page[-1][0].decode()  # the next page starts past the last one read
        start, end = (start, after) if reverse else (after, end)


def count_entries(db, stream: str, start: str = "-", end: str = "+", *, limit: int | None = None) -> int:
    """How many entries the stream holds between two IDs (XRANGE bounds, `(` for exclusive).

    With a limit it stops there: a result equal to the limit means "at least that many"."""
    return sum(1 for _ in read_range(db, stream, start, end, limit=limit))


def count_pending(db, stream: str, group: str, start: str, end: str, *, limit: int | None = None) -> int:
    """How many of the group's pending entries have IDs between start and end (XPENDING bounds).

    With a limit it stops there: a result equal to the limit means "at least that many"."""
    total = 0
    while limit is None or total < limit:
        want = PAGE if limit is None else min(PAGE, limit - total)
        rows = db.xpending_range(stream, group, start, end, want)
        total += len(rows)
        if len(rows) < want:
            break
        start = "(" + rows[-1]["message_id"].decode()
    return total


@dataclass(frozen=True)
class Split:
    """The entries of a stream at or before an ID, and after it: exact, or (exact False) lower
    bounds, each side counted as far as the limit allowed."""

    before: int
    after: int
    exact: bool


def split_at(db, stream: str, at: str, length: int, *, limit: int = COUNT_LIMIT) -> Split:
    """How many entries lie after the ID `at` (a group's unread ones) and at or before it.

    Both sides are counted a page at a time, in turn: the shorter one ends first and the stream's
    length gives the other, so a group near either end of a long stream is counted exactly and
    quickly. After `limit` entries in all it stops: both counts are then "at least".
    """
    forward, backward = "(" + at, at
    before = after = 0
    while before + after < limit:
        page = db.xrevrange(stream, backward, "-", count=PAGE)
        before += len(page)
        if len(page) < PAGE:
            return Split(before, max(length - before, 0), True)
        backward = "(" + page[-1][0].decode()
        page = db.xrange(stream, forward, "+", count=PAGE)
        after += len(page)
        if len(page) < PAGE:
            return Split(max(length - after, 0), after, True)
        forward = "(" + page[-1][0].decode()
    return Split(before, after, False)
