"""Stream entry IDs, `<milliseconds>-<sequence>`, and counting what lies between two of them.

IDs compare by number, not by text (`9-0` < `10-0`), and Redis has no O(1) count of a range
of a stream, so counting pages through it.
"""

from __future__ import annotations

import re

PAGE = 1000  # entries per XRANGE / XPENDING page when counting
ID = re.compile(r"^\d+(-\d+)?$")  # an ID as a person types it: 1700000000000-0, or the time alone


def parse_id(raw: bytes | str) -> tuple[int, int]:
    """`1700000000000-3` as (1700000000000, 3), so IDs compare by number, not by text."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def id_text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


def next_id(raw: bytes | str) -> str:
    """The smallest ID after this one (for an inclusive bound that means "after")."""
    ms, seq = parse_id(raw)
    return f"{ms}-{seq + 1}"


def count_entries(db, stream: str, start: str = "-", end: str = "+") -> int:
    """How many entries the stream holds between two IDs (XRANGE bounds, `(` for exclusive)."""
    total = 0
    while True:
        page = db.xrange(stream, start, end, count=PAGE)
        total += len(page)
        if len(page) < PAGE:
            return total
        start = "(" + page[-1][0].decode()


def count_pending(db, stream: str, group: str, start: str, end: str) -> int:
    """How many of the group's pending entries have IDs between start and end (XPENDING bounds)."""
    total = 0
    while True:
        rows = db.xpending_range(stream, group, start, end, PAGE)
        total += len(rows)
        if len(rows) < PAGE:
            return total
        start = "(" + rows[-1]["message_id"].decode()
