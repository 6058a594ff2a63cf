"""A consumer's settings, built once from its options, and the periods derived from them."""

from __future__ import annotations

from dataclasses import dataclass

MAX_COUNT = 10_000  # entries per read: all of them can be in hand at once, and redelivered after a crash
MAX_CONCURRENCY = 1_000  # handler calls at once
MIN_CLAIM_IDLE = 100  # ms: below this a consumer would claim work that is still in another's hand
HANDLER_TIMEOUT_FACTOR = 5  # --handler-timeout defaults to this many times --claim-idle


@dataclass(frozen=True, kw_only=True)
class Settings:
    group: str
    name: str
    count: int  # entries per read (and per XACK), at most
    block_ms: int  # how long a blocking read waits
    burst: bool  # exit once nothing is left
    claim_idle_ms: int  # claim entries idle longer than this
    max_deliveries: int  # dead-letter an entry delivered more often than this
    handler_timeout_ms: int | None  # keep a batch in hand fresh for at most this long (None: the default)
    fail_rate: float  # fail this fraction of readings on purpose
    stats_interval: float  # seconds between status lines (0: none)
    concurrency: int = 1  # handler calls at once
    order_by: str = "sensor_id"  # entries with the same value of this field run one at a time, in order
    retry_delays: tuple[int, ...] = ()  # ms before this consumer retries a failed entry (none: after --claim-idle)

    @property
    def read_count(self) -> int:
        """Entries per read: --count, or twice --concurrency if that is more, so that a half batch can
        keep every handler slot busy. What is in hand is at most this (plus entries waiting to be retried)."""
        return min(MAX_COUNT, max(self.count, 2 * self.concurrency))

    # Everything a consumer does on a clock follows from --claim-idle, here and nowhere else.
    @property
    def claim_every(self) -> float:
        """Seconds between claimings (XPENDING IDLE, then XAUTOCLAIM): half of --claim-idle, so an
        entry abandoned just after one is claimed within 1.5 x --claim-idle."""
        return self.claim_idle_ms / 2000

    @property
    def refresh_every(self) -> float:
        """Seconds between refreshes of the entries in hand: a third of --claim-idle, so each is
        refreshed twice before it could be claimed, and one late refresh (a busy machine) is no harm."""
        return self.claim_idle_ms / 3000

    @property
    def held_long(self) -> float:
        """Seconds in hand after which a batch is "held for long" (shown by admin.py info): as long
        as another consumer would wait before claiming it."""
        return self.claim_idle_ms / 1000

    @property
    def handler_timeout(self) -> float:
        """Seconds a batch in hand is kept fresh at most: --handler-timeout, or HANDLER_TIMEOUT_FACTOR x
        --claim-idle (a handler that slow is taken to hang: its batch goes to the others)."""
        return (self.handler_timeout_ms or HANDLER_TIMEOUT_FACTOR * self.claim_idle_ms) / 1000
