"""Claiming: taking over pending entries that another consumer (or this one) left idle.

The tutorial: "other consumers ... can claim (XCLAIM) the pending messages and retry". A
consumer that dies keeps its pending entries for ever; XAUTOCLAIM hands every entry idle for
longer than --claim-idle to the caller, raising its delivery count, so a poison entry is noticed
by how often it came back.
"""

from __future__ import annotations

import time

import click
import redis.exceptions as rex


class Sweep:
    """XAUTOCLAIM over the whole pending list, twice per claim-idle period.

    XAUTOCLAIM scans the group's pending list from a cursor; a full sweep follows it until it
    comes back as 0-0. Sweeping twice per period takes an abandoned entry over within about
    1.5 x claim-idle.
    """

    def __init__(self, entries, consumer: str, *, claim_idle: int, count: int, where: str):
        self.entries, self.consumer = entries, consumer
        self.claim_idle, self.count, self.where = claim_idle, count, where
        self.next_at = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next_at:
            return False
        self.next_at = now + self.claim_idle / 2000
        return True

    def until(self) -> float:
        """Seconds until the next sweep is due."""
        return max(0.0, self.next_at - time.monotonic())

    def batches(self, stop):
        """(claimed entries, how many pending IDs had lost their data), a page at a time.

        Redis 7.0+ drops pending IDs whose entries were trimmed or deleted and names them in a
        third element of the reply; they are off the pending list from then on.
        """
        cursor = "0-0"
        while not stop:
            try:
                reply = self.entries.autoclaim(self.consumer, self.claim_idle, cursor, self.count)
            except rex.ResponseError as exc:
                if "unknown command" in str(exc).lower():
                    raise click.ClickException(
                        f"consumer.py needs Redis 6.2 or newer (XAUTOCLAIM); {self.where} is older"
                    ) from None
                raise
            cursor, batch = reply[0], reply[1]
            yield batch, len(reply[2]) if len(reply) > 2 else 0
            if cursor in (b"0-0", "0-0"):
                return
