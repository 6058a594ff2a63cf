"""Reading a shard through the group one read ahead, so Redis works while the handler does.

A read through a group is real work for Redis: each entry it delivers goes on the pending
list, and each XACK takes it off. Done in turn (read, process, acknowledge, read...), Redis waits
for Python and Python waits for Redis. Here two reads of half a batch (--count / 2) are in
flight: while the handler works on one half, Redis answers the next. After each half its XACK
(with --fanout, a script that acknowledges each entry and adds its outputs: see
ACKNOWLEDGE_AND_ADD) goes out together with the next read. So no more than --count entries are
ever delivered and not acknowledged: a crash still redelivers at most one batch.

Each read is one MULTI/EXEC: the stream's and the group's XINFO, then XREADGROUP `>` (which never
blocks inside MULTI), for counting what MAXLEN/XTRIM removed before the group read it. Replies
are raw (stream_pubsub/replies.py) and read off the connection in the order the commands went.

A slow handler must not hold entries that are not in hand: whoever keeps entries fresh (the
Keeper thread) may first `take_in_flight()`, which reads the replies that have arrived, under the
lock, so their entries are in hand and kept fresh too.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import redis.exceptions as rex
from hiredis import pack_command

from .replies import entries, group_info


class ReadAhead:
    def __init__(self, pool_of, key: str, settings, *, fanout: str | None):
        """pool_of(): the connection pool of the node that holds the key now (a cluster's slot can move)."""
        self.pool_of, self.key, self.fanout, self.group = pool_of, key, fanout, settings.group
        self.pool = None
        self.half = max(1, settings.read_count // 2)
        reading = (
            ("XINFO", "STREAM", key),
            ("XINFO", "GROUPS", key),
            ("XREADGROUP", "GROUP", self.group, settings.name, "COUNT", self.half, "STREAMS", key, ">"),
            ("XINFO", "GROUPS", key),
        )
        self.read_command = b"".join(pack_command(c) for c in (("MULTI",), *reading, ("EXEC",)))
        # A full Redis (maxmemory, noeviction) refuses a MULTI even of reads, but serves the reads
        # themselves: then they go without MULTI (a trim in between could be miscounted, no more).
        self.plain_read = b"".join(pack_command(c) for c in reading)
        self.full_until = 0.0
        self.conn = None
        self.expected: deque = deque()  # what the replies still on the wire answer: "read" or "ack"
        self.arrived: deque = deque()  # reads taken off the wire early (take_in_flight), in order
        self.lock = threading.Lock()
        self.error: AcknowledgeRefused | None = None  # an XACK Redis refused: raised at the next step
        self.taken = 0  # entries an XACK found acknowledged already: another consumer claimed them

    @property
    def reads_in_flight(self) -> int:
        return sum(what[0] == "read" for what in self.expected) + len(self.arrived)

    def _raise_refused(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def send(self, acknowledge: tuple[list, dict], read: bool, *, again: bool = False) -> None:
        """Send the XACK of a processed half (with fan-out, the script that acknowledges each entry
        and adds its outputs) and maybe a read. `again`: an XACK sent once already, whose reply was
        lost (a reconnect): that it acknowledges fewer is no news."""
        done, outputs = acknowledge
        parts = []
        if outputs:
            script = ("EVAL", ACKNOWLEDGE_AND_ADD, 2, self.key, self.fanout, self.group)
            parts += [pack_command((*script, *_per_entry(done, outputs)))]
        elif done:
            parts += [pack_command(("XACK", self.key, self.group, *done))]
        with self.lock:
            if self.conn is None:
                self.pool = self.pool_of()
                self.conn = self.pool.get_connection()
            if parts:
                self.expected.append(("ack", 1, (done, outputs, again), 0))
            if read:
                plain = time.monotonic() < self.full_until
                parts.append(self.plain_read if plain else self.read_command)
                self.expected.append(("read", 4 if plain else 6, None, 0))
            if parts:
                self.conn.send_packed_command(parts, check_health=False)
            self._raise_refused()  # one found by the Keeper's take_in_flight meanwhile

    def unanswered(self) -> tuple[list, dict]:
        """The XACKs on the wire whose replies were not read yet: (their IDs, their outputs)."""
        ids, outputs = [], {}
        for kind, _, acknowledged, _ in self.expected:
            if kind == "ack":
                ids += acknowledged[0]
                outputs.update(acknowledged[1])
        return ids, outputs

    def next_read(self):
        """The next read's (entries, stream info, group before, group after); None when none is in flight."""
        with self.lock:
            while not self.arrived:
                if not self.expected:
                    self._raise_refused()
                    return None
                self._take_one()
            self._raise_refused()  # (the read stays in `arrived` for the next call)
            found = self.arrived.popleft()
        if found is _FULL:
            self.send(([], []), read=True)
            return self.next_read()
        if isinstance(found, Exception):
            raise found
        return found

    def take_in_flight(self) -> list:
        """Take every reply still on the wire (the Keeper: so no delivered entry sits unseen); their IDs."""
        with self.lock:
            try:
                while self.expected:
                    self._take_one()
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                self.expected.clear()
                self.arrived.append(exc)  # the main loop meets it at its next read
            return [entry_id for found in self.arrived if not isinstance(found, Exception) for entry_id, _ in found[0]]

    def flush(self) -> None:
        """Wait for every XACK sent (before blocking, before exiting); raise one Redis refused."""
        with self.lock:
            while self.expected:
                self._take_one()
            self._raise_refused()

    def _take_one(self) -> None:
        kind, replies, acks, outputs = self.expected.popleft()
        got, failed = [], None
        for _ in range(replies):
            try:
                got.append(self.conn.read_response())
            except rex.ResponseError as exc:  # an error at queue time, or EXECABORT
                failed = failed or exc
                got.append(exc)
        if kind == "ack":
            (done, outputs, again), [reply] = acks, got
            if isinstance(reply, Exception):  # refused before it ran (OOM, a fan-out key not a stream)
                if self.error is None:
                    self.error = AcknowledgeRefused(reply, acks=len(done), outputs=sum(map(len, outputs.values())))
            elif reply < len(done) and not again:
                self.taken += len(done) - reply
            return
        if replies == 6:  # MULTI, 4 x QUEUED, EXEC
            if isinstance(failed, rex.OutOfMemoryError):  # refused whole: read again, without MULTI
                self.full_until = time.monotonic() + 1.0
                self.arrived.append(_FULL)
                return
            if failed is not None:
                self.arrived.append(failed)
                return
            got = got[-1]
        info, before, reply, after = got
        if isinstance(reply, Exception):
            self.arrived.append(reply)
            return
        name = self.group.encode()
        before = None if isinstance(before, Exception) else group_info(before, name)
        after = None if isinstance(after, Exception) else group_info(after, name)
        self.arrived.append((entries(reply), None if isinstance(info, Exception) else info, before, after))

    def abandon(self) -> None:
        """The connection failed: drop it and whatever was on the wire (what was delivered and not
        seen stays pending with us, and is re-read as our own pending entries)."""
        with self.lock:
            if self.conn is not None:
                self.conn.disconnect()
                self.pool.release(self.conn)
            self.conn = None
            self.expected.clear()
            self.arrived.clear()
            self.error = None

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.pool.release(self.conn)
                self.conn = None


_FULL = object()  # a read refused for want of memory: sent again without MULTI


class AcknowledgeRefused(Exception):
    """Redis refused a batch's XACK (or its fan-out script) before any of it ran (OOM; a fan-out key that is not a
    stream): nothing was acknowledged or added, the entries are still pending."""

    def __init__(self, error: Exception, *, acks: int, outputs: int):
        super().__init__(str(error))
        self.error, self.acks, self.outputs = error, acks, outputs


# Exactly-once fan-out: an entry's outputs are added by the script whose XACK removed it from the
# pending list, and only by it. Two consumers can hold the same entry (one frozen past
# --claim-idle and resumed after another claimed it; two started with the same name): MULTI
# would add both sets of outputs, since no command in it can depend on another's reply. This
# script acknowledges each entry and adds its outputs only where XACK answered 1. Its keys are
# the shard and its fan-out stream, in one slot on a cluster. `#!lua` (Redis 7.0+): a full Redis
# refuses it before it starts, and the XLEN check refuses a fan-out key that is not a stream
# before anything is acknowledged, so it is never half done.
ACKNOWLEDGE_AND_ADD = """#!lua
-- KEYS[1] the stream, KEYS[2] the fan-out stream; ARGV[1] the group, then per entry: its ID,
-- its number of outputs, and per output its number of items followed by field, value, ...
-- Returns how many entries this XACK acknowledged.
local wrong = redis.pcall('XLEN', KEYS[2])  -- WRONGTYPE unless a stream or nothing
if type(wrong) == 'table' and wrong.err then
  return wrong
end
local acknowledged, i = 0, 2
while i <= #ARGV do
  local mine = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1
  local outputs = tonumber(ARGV[i + 1])
  i = i + 2
  if mine then acknowledged = acknowledged + 1 end
  for _ = 1, outputs do
    local n = tonumber(ARGV[i])
    if mine then redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 1, i + n)) end
    i = i + n + 1
  end
end
return acknowledged
"""


def _per_entry(done: list, outputs: dict) -> list:
    """The script's arguments: per entry its ID, how many outputs, and each output's items."""
    args = []
    for entry_id in done:
        made = outputs.get(entry_id, ())
        args += [entry_id, len(made)]
        for output in made:
            args.append(2 * len(output))
            args += [part for pair in output.items() for part in pair]
    return args
