"""Slow work is not stolen, and hung work is let go: entries in hand are kept fresh for a while.

Another consumer's XAUTOCLAIM takes an entry once it has been idle (not delivered or claimed)
for --claim-idle. A handler slower than that would have its entries claimed and processed twice.
So while a batch is in hand, a thread XCLAIMs its not-yet-acknowledged entries to their own
consumer every third of --claim-idle, with JUSTID: that resets their idle time without raising
their delivery count. Only entries still pending with this consumer are touched (a failed
entry is let go at once, so it can be retried). It stops the moment the batch is acknowledged,
and with the process: a consumer that dies is claimed from as before.

A handler that hangs would hold its batch for ever. So a batch is kept fresh for at most
--handler-timeout; then it is let go (said, once), and the other consumers claim its entries after
--claim-idle. While a batch has been in hand longer than --claim-idle, the consumer's connection
name says since when (stream_pubsub/presence.py), for `admin.py info`.

Run every consumer of a group with the same --claim-idle.
"""

from __future__ import annotations

import threading
import time

import redis.exceptions as rex

from .ids import parse_id


class Keeper:
    def __init__(self, settings, *, presence, say):
        # every Settings.refresh_every seconds; a batch at most --handler-timeout; said after held_long
        self.period, self.timeout, self.long = settings.refresh_every, settings.handler_timeout, settings.held_long
        self.presence, self.say = presence, say
        self.held: dict[str, tuple] = {}  # shard key -> (shard, entry IDs, since when)
        self.let_go: dict[str, float] = {}  # shard key -> since when: batches in hand that outlived the timeout
        self.marked = False  # the presence name says a batch is held for long
        self.retrying: dict[str, tuple] = {}  # shard key -> (shard, IDs waiting for a retry: --retry-delays)
        self.thread = None

    def hold(self, shard, ids: list, *, new: bool = False) -> None:
        """These entries of this shard are in hand (a new batch, or processed and waiting for their XACK)."""
        if not ids:
            self.release(shard)
            return
        held = self.held.get(shard.key)
        if new or held is None:
            since = time.monotonic()
            self.let_go.pop(shard.key, None)
        else:
            since = held[2]
        if shard.key not in self.let_go:
            self.held[shard.key] = (shard, list(ids), since)
        self._start()

    def waiting(self, shard, ids: list) -> None:
        """These entries wait for a retry by us (--retry-delays): kept fresh, however long, until retried."""
        if ids:
            self.retrying[shard.key] = (shard, list(ids))
            self._start()
        else:
            self.retrying.pop(shard.key, None)

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="keeper", daemon=True)
            self.thread.start()

    def release(self, shard) -> None:
        self.held.pop(shard.key, None)
        self.let_go.pop(shard.key, None)
        if self.marked and not self.held:
            self.marked = False
            if self.presence is not None:
                self.presence.holding_since(None)

    def busy(self) -> float:
        """For how long the batch held longest has been in hand, in seconds (0: none)."""
        now = time.monotonic()
        held = [since for _, _, since in list(self.held.values())] + list(self.let_go.values())
        return max((now - since for since in held), default=0.0)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            for shard, ids in list(self.retrying.values()):
                try:
                    shard.keep_fresh(sorted(ids, key=parse_id))
                except rex.RedisError:
                    pass
            now = time.monotonic()
            for shard, ids, since in list(self.held.values()):
                if now - since >= self.timeout:
                    self.held.pop(shard.key, None)
                    self.let_go[shard.key] = since
                    self.say(
                        f"the handler has had {len(shard.in_hand(ids))} entries of {shard.key} in hand for "
                        f"{now - since:.1f}s "
                        f"(--handler-timeout {self.timeout * 1000:.0f}): letting them go, for the other consumers to "
                        "claim after --claim-idle"
                    )
                    continue
                if now - since >= self.period and shard.key in self.held:
                    try:
                        shard.keep_fresh(shard.in_hand(ids))
                    except rex.RedisError:
                        pass  # Redis is away: the main loop says so; the entries wait for it as before
                if now - since >= self.long and not self.marked:  # said once, and shown to admin.py info
                    self.marked = True
                    self.say(
                        f"the handler has had {len(shard.in_hand(ids))} entries of {shard.key} in hand for "
                        f"{now - since:.1f}s, longer than --claim-idle; kept from being claimed until "
                        f"--handler-timeout {self.timeout * 1000:.0f}"
                    )
                    if self.presence is not None:
                        self.presence.holding_since(int((time.time() - (now - since)) * 1000))
