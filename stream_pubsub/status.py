"""What a consumer says about its work: the counts in its summary line, and a status line on
stderr every --stats-interval seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields

from .telling import say


@dataclass
class Counts:
    processed: int = 0
    failed: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    trimmed_pending: int = 0  # pending entries whose data was trimmed away: acknowledged
    trimmed_unread: int = 0  # entries trimmed from the stream before this group read them

    def summary(self) -> str:
        return ", ".join(f"{f.name.replace('_', '-')} {getattr(self, f.name)}" for f in dataclass_fields(self))


@dataclass
class StatusLine:
    """`c1: processed 10, failed 0, ..., 512/s, group lag 0`, every `interval` seconds (0: never)."""

    name: str
    interval: float
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self):
        self.next_at = time.monotonic() + self.interval
        self.mark = (time.monotonic(), 0)

    def report_if_due(self, lag) -> None:
        """`lag()` gives the group's lag (None: unknown); asked only when a line is due."""
        now = time.monotonic()
        if not self.interval or now < self.next_at:
            return
        then, before = self.mark
        rate = (self.counts.processed - before) / max(now - then, 1e-9)
        self.mark, self.next_at = (now, self.counts.processed), now + self.interval
        behind = lag()
        say(f"{self.name}: {self.counts.summary()}, {rate:.0f}/s, group lag {'unknown' if behind is None else behind}")
