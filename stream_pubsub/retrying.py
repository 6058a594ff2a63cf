"""Failures retried with a backoff (--retry-delays 1000,5000,30000), by the consumer that failed.

Without it a failed entry stays pending and is retried after --claim-idle, by whichever consumer
claims it. With it, after its k-th failed delivery an entry is retried by this consumer after the
k-th delay (the last one repeats). Meanwhile it stays pending with this consumer, kept fresh
(stream_pubsub/keeping.py) so nobody claims it early, and the later entries of its sensor
(--order-by) wait behind it: the sensor waits, the others go on. The retry reads it again with
XCLAIM to ourselves (not JUSTID), which raises its delivery count in Redis like any redelivery, so
--max-deliveries still moves it to the dead letters, which lets its sensor go on. If the consumer
dies, the others claim what it held after --claim-idle, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Waiting:
    """A failed entry waiting for its retry, and the entries of its sensor held back behind it."""

    shard: object
    entry_id: bytes
    times: int  # deliveries so far
    due: float  # time.monotonic() of the retry
    held: list = field(default_factory=list)  # [(entry ID, fields)], in stream order


class Retries:
    def __init__(self, delays_ms: tuple[int, ...]):
        self.delays = delays_ms
        self.waiting: dict[tuple, Waiting] = {}  # (shard key, chain key) -> what waits

    def __bool__(self) -> bool:
        return bool(self.delays)

    def delay(self, times: int) -> float:
        """Seconds before the retry after the `times`-th failed delivery."""
        return self.delays[min(times, len(self.delays)) - 1] / 1000

    def wait(self, shard, key, entry_id: bytes, times: int) -> None:
        self.waiting[(shard.key, key)] = Waiting(shard, entry_id, times, time.monotonic() + self.delay(times))

    def holds(self, shard, key, entry_id: bytes, fields) -> bool:
        """True (and kept) if this entry's sensor waits for a retry: it goes after that one."""
        waiting = self.waiting.get((shard.key, key))
        if waiting is None:
            return False
        waiting.held.append((entry_id, fields))
        return True

    def due(self) -> list[Waiting]:
        """What is due now, taken off the list (its sensor is free until it fails again)."""
        now = time.monotonic()
        ripe = [k for k, w in self.waiting.items() if w.due <= now]
        return [self.waiting.pop(k) for k in ripe]

    def until(self) -> float | None:
        """Seconds until the next retry (None: none waits)."""
        return max(0.0, min(w.due for w in self.waiting.values()) - time.monotonic()) if self.waiting else None

    def block_ms(self, block_ms: int) -> int:
        """How long a blocking read may wait: --block, or less when a retry is due before it ends."""
        until = self.until()
        return block_ms if until is None else max(1, min(block_ms, int(until * 1000)))

    def ids(self, shard) -> list[bytes]:
        """Every entry of this shard that waits (failed, or held back): kept fresh while it waits."""
        return [i for w in self.waiting.values() if w.shard is shard for i in (w.entry_id, *(e for e, _ in w.held))]

    def forget(self, shard) -> None:
        """The shard's group is gone (FLUSHALL): what waited on it means nothing now."""
        self.waiting = {k: w for k, w in self.waiting.items() if w.shard is not shard}
