"""What a consumer says about its work: the counts in its summary line, and a status line on
stderr every --stats-interval seconds. The same counts, and when its loop last turned, are what
consumer.py --metrics reads at each scrape (stream_pubsub/consumer_metrics.py)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields

from .telling import say

NOT_SUMMED = {"summary": False}  # counted for --metrics, kept out of the summary line


@dataclass
class Counts:
    processed: int = 0
    failed: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    trimmed_pending: int = 0  # pending entries whose data was trimmed away: acknowledged
    trimmed_unread: int = 0  # entries trimmed from the stream before this group read them
    recovered: int = field(default=0, metadata=NOT_SUMMED)  # re-read from its own pending list (start, reconnect)
    reconnects: int = field(default=0, metadata=NOT_SUMMED)  # times it lost Redis and waited for it

    def summary(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', '-')} {getattr(self, f.name)}"
            for f in dataclass_fields(self)
            if f.metadata.get("summary", True)
        )


@dataclass
class StatusLine:
    """`c1: processed 10, failed 0, ..., 512/s, group lag 0`, every `interval` seconds (0: never)."""

    name: str
    interval: float
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self):
        self.next_at = time.monotonic() + self.interval
        self.mark = (time.monotonic(), 0)
        self.turned = time.monotonic()  # when the loop last turned (it asks for a line every turn)
        self.reconnecting_since: float | None = None  # monotonic time Redis was lost, while it is away

    def report_if_due(self, lag) -> None:
        """`lag()` gives the group's lag (None: unknown); asked only when a line is due."""
        now = self.turned = time.monotonic()
        if not self.interval or now < self.next_at:
            return
        then, before = self.mark
        rate = (self.counts.processed - before) / max(now - then, 1e-9)
        self.mark, self.next_at = (now, self.counts.processed), now + self.interval
        behind = lag()
        say(f"{self.name}: {self.counts.summary()}, {rate:.0f}/s, group lag {'unknown' if behind is None else behind}")

    @contextmanager
    def reconnecting(self):
        """While the consumer waits for Redis to come back (or learns where a cluster's slot went)."""
        self.counts.reconnects += 1
        self.reconnecting_since = time.monotonic()
        try:
            yield
        finally:
            self.reconnecting_since = None
