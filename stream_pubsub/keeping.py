"""Slow work is not stolen: entries in hand are kept fresh while the handler works on them.

Another consumer's XAUTOCLAIM takes an entry once it has been idle (not delivered or claimed)
for --claim-idle. A handler slower than that would have its entries claimed and processed twice.
So while a batch is in hand, a thread XCLAIMs its not-yet-acknowledged entries to their own
consumer every third of --claim-idle, with JUSTID: that resets their idle time without raising
their delivery count. Only entries still pending with this consumer are touched (a failed
entry is let go at once, so it can be retried). It stops the moment the batch is acknowledged,
and with the process: a consumer that dies is claimed from as before.

Run every consumer of a group with the same --claim-idle.
"""

from __future__ import annotations

import threading
import time

import redis.exceptions as rex

from .ids import parse_id


class Keeper:
    def __init__(self, consumer: str, claim_idle_ms: int):
        self.consumer, self.period = consumer, claim_idle_ms / 3000
        self.held: dict[str, tuple] = {}  # shard key -> (shard, entry IDs, since when)
        self.thread = None
        self.refreshed = 0  # how many times an entry was kept fresh (for tests and the curious)

    def hold(self, shard, ids: list) -> None:
        """These entries of this shard are in hand (being processed, or waiting for their XACK)."""
        if ids:
            since = self.held[shard.key][2] if shard.key in self.held else time.monotonic()
            self.held[shard.key] = (shard, list(ids), since)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="keeper", daemon=True)
                self.thread.start()
        else:
            self.held.pop(shard.key, None)

    def release(self, shard) -> None:
        self.held.pop(shard.key, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            now = time.monotonic()
            for shard, ids, since in list(self.held.values()):
                if now - since >= self.period:
                    try:
                        self.refresh(shard, ids)
                    except rex.RedisError:
                        pass  # Redis is away: the main loop says so; the entries wait for it as before

    def refresh(self, shard, ids: list) -> None:
        """XCLAIM <ids still pending with us> to ourselves, min-idle 0, JUSTID: the batch in hand, those
        processed before it and waiting for their XACK (re-read or claimed batches are acknowledged
        together), and what arrived meanwhile."""
        ids = sorted({*ids, *shard.unacked, *shard.ahead.take_in_flight()}, key=parse_id)
        rows = shard.entries.pending(start=ids[0], stop=ids[-1], consumer=self.consumer, count=len(ids) + 100)
        wanted = set(ids)
        mine = [row["message_id"] for row in rows if row["message_id"] in wanted]
        if mine and self.held.get(shard.key, (None, None))[1] is not None:
            shard.db.xclaim(shard.key, shard.group, self.consumer, 0, mine, justid=True)
            self.refreshed += len(mine)
