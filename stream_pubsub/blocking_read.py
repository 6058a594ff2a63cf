"""The tutorial's blocking read: waiting for new entries on every shard at once, without polling.

On one Redis, one XREADGROUP names every shard and BLOCKs until an XADD to any of them (or
--block ms): the entries it returns are delivered, like any read. A blocked reader is served right
after the XADD, before any later trim, so this read never skips entries.

On a cluster one command cannot name keys of several slots (CROSSSLOT), so each shard has a
thread that waits with XREAD BLOCK from the group's last-delivered ID on that shard: XREAD
delivers nothing (no pending entry is made), it only wakes the consumer, which then reads the
shard through the group as usual. An idle consumer's threads wake once per --block.
"""

from __future__ import annotations

import threading
import time

import redis.exceptions as rex

from .replies import streams


def blocking_read(connection, shards, settings):
    """BlockingReadPerShard on a cluster with more than one shard, BlockingRead otherwise."""
    if connection.cluster and len(shards) > 1:
        return BlockingReadPerShard(connection.db, shards, block_ms=settings.block_ms)
    return BlockingRead(connection.db, shards, settings)


class BlockingRead:
    """One XREADGROUP ... BLOCK over all the shards (one Redis, or a single shard on a cluster)."""

    def __init__(self, db, shards, settings):
        self.db, self.group, self.consumer, self.count = db, settings.group, settings.name, settings.read_count
        self.by_key = {shard.key.encode(): shard for shard in shards}

    def wait(self, block_ms: int) -> list[tuple]:
        """[(shard, entries)] delivered by one blocking read; [] after block_ms with nothing."""
        # XREADGROUP GROUP <group> <consumer> COUNT <count> BLOCK <ms> STREAMS <shard>... > ...
        reply = self.db.xreadgroup(
            self.group, self.consumer, {shard.key: ">" for shard in self.by_key.values()}, self.count, block_ms
        )
        return [(self.by_key[key], found) for key, found in streams(reply) if found]

    def close(self) -> None:
        pass


class BlockingReadPerShard:
    """A thread per shard, each waiting with XREAD BLOCK (a cluster, more than one shard).

    The threads start at the first wait (a --burst consumer never waits), and XREAD only while
    the consumer waits: while it reads and processes a backlog they sleep, instead of waking on
    every entry that is already there.
    """

    def __init__(self, db, shards, *, block_ms: int):
        self.db, self.shards, self.block_ms = db, shards, block_ms
        self.armed = threading.Event()  # set while the consumer waits
        self.woken = threading.Event()  # set by a thread whose shard has something new
        self.closed = False
        self.threads: list[threading.Thread] = []

    def wait(self, block_ms: int) -> list[tuple]:
        """Sleep until a shard has entries after the group's position (or block_ms); mark it.

        After block_ms with nothing, every shard is read once all the same: XREAD does not notice
        a group that is gone (FLUSHALL), XREADGROUP does.
        """
        if not self.threads:
            self.threads = [threading.Thread(target=self._watch, args=(s,), daemon=True) for s in self.shards]
            for thread in self.threads:
                thread.start()
        self.woken.clear()
        self.armed.set()
        woke = self.woken.wait(block_ms / 1000)
        self.armed.clear()
        if not woke:
            for shard in self.shards:
                shard.wake()
        return []

    def _watch(self, shard) -> None:
        while not self.closed:
            self.armed.wait()
            if self.closed:
                return
            try:  # from the group's position after the consumer's last read of this shard
                reply = self.db.xread({shard.key: shard.last_delivered}, count=1, block=self.block_ms)
            except (rex.ConnectionError, rex.TimeoutError, rex.ResponseError, rex.RedisClusterException):
                reply = True  # the main loop finds out what is wrong, and says so
                time.sleep(0.5)  # not in a tight loop while Redis is away
            if reply and not self.closed:
                shard.wake()
                self.woken.set()
                while self.armed.is_set() and not self.closed:  # until the consumer has read it
                    time.sleep(0.005)

    def close(self) -> None:
        self.closed = True
        self.armed.set()
        self.woken.set()
