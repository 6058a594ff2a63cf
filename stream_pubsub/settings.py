"""A consumer's settings, built once from its options, and the periods derived from them."""

from __future__ import annotations

from dataclasses import dataclass

MAX_COUNT = 10_000  # entries per read: all of them can be in hand at once, and redelivered after a crash
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
    handler_timeout_ms: int  # keep a batch in hand fresh for at most this long
    fail_rate: float  # fail this fraction of readings on purpose
    stats_interval: float  # seconds between status lines (0: none)

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
        return self.handler_timeout_ms / 1000
