"""Claiming: taking over pending entries that another consumer (or this one) left idle.

The tutorial: "other consumers ... can claim (XCLAIM) the pending messages and retry". A
consumer that dies keeps its pending entries for ever; XAUTOCLAIM hands every entry idle for
longer than --claim-idle to the caller, raising its delivery count, so a poison entry is noticed
by how often it came back.
"""

from __future__ import annotations

import time

import redis.exceptions as rex

from .telling import UserError


class IdleClaims:
    """Claiming over the whole pending list of one stream, every Settings.claim_every seconds."""

    def __init__(self, entries, settings, *, where: str):
        self.entries, self.consumer, self.where = entries, settings.name, where
        self.claim_idle, self.every, self.count = settings.claim_idle_ms, settings.claim_every, settings.count
        self.next_at = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next_at:
            return False
        self.next_at = now + self.every
        return True

    def until(self) -> float:
        """Seconds until the next claiming is due."""
        return max(0.0, self.next_at - time.monotonic())

    def claim(self, stop):
        """(claimed entries, how many pending IDs had lost their data), one entry at a time.

        One at a time, because a claimed entry was delivered before and not acknowledged: its
        consumer may have died of it (a handler that exits, segfaults, or is killed for memory on
        one reading). Claimed together, the entries of a batch are delivered again together and
        their delivery counts rise together, so --max-deliveries would dead-letter the good ones
        beside the one that kills. XPENDING ... IDLE finds the candidates without claiming them;
        XAUTOCLAIM ... COUNT 1 from each takes it (only if it is still idle: two consumers sweeping
        at once never both get it). Redis 7.0+ drops pending IDs whose entries were trimmed or
        deleted and names them in a third element of its reply; they are off the pending list then.
        """
        start = "-"
        while not stop:
            rows = self.entries.pending(start, "+", self.count, idle=self.claim_idle)
            for row in rows:
                if stop:
                    return
                try:
                    reply = self.entries.autoclaim(self.consumer, self.claim_idle, row["message_id"], 1)
                except rex.ResponseError as exc:
                    if "unknown command" in str(exc).lower():
                        raise UserError(
                            f"consumer.py needs Redis 6.2 or newer (XAUTOCLAIM); {self.where} is older"
                        ) from None
                    raise
                yield reply[1], len(reply[2]) if len(reply) > 2 else 0
            if len(rows) < self.count:
                return
            start = "(" + rows[-1]["message_id"].decode()
