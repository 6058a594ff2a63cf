"""Adding readings to the stream: what Redis stored, what it refused, and the fast bulk path.

One XADD per round trip is what the tutorial's producer does, and producer.py does it for one
reading or with --interval. Without --interval, `send_many` writes BATCH XADDs at a time, packed by
hiredis into one write (a pipeline, no MULTI: nothing needs to be atomic), and makes the next
batch while Redis works through the one just written.

A reply lost with the connection (the connection killed, a server frozen past the socket
timeout, a failover) does not say whether Redis stored the reading: sent again blindly, it may be
stored twice. So the replies already read are kept (those readings are stored: counted, never
sent again), and for the others `find_stored` looks in the stream first; only what Redis did not
store is sent again.

With --wait-replicas N a reading counts as sent only once N replicas of the server that stored
it have it: WAIT N <timeout> right after the XADD (or the batch), on that server's own connection
(a cluster client would send WAIT to another node, which answers for nobody's writes). WAIT
narrows the window in which a failover loses acknowledged writes; it does not close it: a
replica that has the entry can still lose the election to one that has not.
"""

from __future__ import annotations

import sys
import time
from itertools import chain

import redis.exceptions as rex
from hiredis import pack_command

from .lost_replies import stored_among, trimmed_before
from .telling import UserError, say

BATCH = 1000  # readings per pipelined round trip when sending without --interval
MOVED = (rex.AskError, rex.TryAgainError, rex.ClusterDownError)  # a cluster's slot is elsewhere, or moving


class Stopped(UserError):
    """Ctrl-C or SIGTERM while Redis was unreachable or full: the sentence says what was stored and what was not."""


class Publisher:
    def __init__(
        self,
        connection,
        *,
        stream: str,
        maxlen,
        exact: bool,
        quiet: bool,
        stop,
        wait_replicas=0,
        wait_ms=1000,
        count: int | None = None,
        progress: bool = False,
    ):
        self.connection, self.stream = connection, stream
        self.maxlen, self.approximate = maxlen, not exact
        self.quiet, self.stop = quiet, stop
        self.wait_replicas, self.wait_ms = wait_replicas, wait_ms
        self.wait = pack_command(("WAIT", wait_replicas, wait_ms)) if wait_replicas else None
        self.count = count or None  # how many readings this run sends (None: until stopped)
        self.progress = Progress(self.count) if progress and self.count else None
        self.sent = 0
        self.unconfirmed = 0  # stored, but not on --wait-replicas replicas in time
        self.awaiting: list[tuple[bytes, dict]] = []  # (ID, reading) stored, its WAIT lost: the next WAIT confirms it
        self.last_id: bytes | None = None  # the newest ID stored for good: where a look after a lost reply starts
        self.readable = True  # False: this user may not read the stream (only +xadd), so cannot look
        self.unchecked = 0  # sent again without a look (not readable): may be stored twice
        self.full_since = None  # when Redis last began to answer OOM
        self.reconnects = 0  # times Redis went away and came back (producer.py --metrics reads it)
        self.timing = None  # producer.py --metrics: timing(readings, seconds) after each XADD or batch answered
        self.full_for = 0.0  # seconds it was full before that
        self.said_full = self.said_room = False

    @property
    def stored_count(self) -> int:
        """Readings Redis holds from this run: sent, not confirmed, or waiting for the next WAIT."""
        return self.sent + self.unconfirmed + len(self.awaiting)

    def begin(self) -> None:
        """Before the first XADD: the stream's last ID (XREVRANGE + - COUNT 1), where a look for
        readings whose replies were lost starts until a reply has told a later one."""
        try:
            newest = self.connection.db.xrevrange(self.stream, count=1)
        except rex.NoPermissionError:  # a producer allowed to XADD and nothing else
            self.readable = False
            return
        self.last_id = newest[0][0] if newest else b"0-0"

    def account(self, readings: list, replies: list, replicas: int | None = 0) -> list:
        """What Redis answered for these readings, in order: an ID (stored: counted), or an error
        (refused). Returns the refused ones, (reading, error), to be sent again. `replicas` is
        WAIT's answer; None: the connection was lost before it came."""
        ids = [r for r in replies if not isinstance(r, Exception)]
        if len(ids) == len(replies):  # all stored, the usual case
            if self.full_since is not None and ids:  # a whole batch taken: Redis has room again
                self.room_again()
            if ids:
                self.confirm(ids, replicas, readings)
            return []
        if ids:
            self.confirm(
                ids, replicas, [reading for reading, r in zip(readings, replies) if not isinstance(r, Exception)]
            )
        return [(reading, r) for reading, r in zip(readings, replies) if isinstance(r, Exception)]

    def confirm(self, ids: list[bytes], replicas: int | None, readings: list[dict] = ()) -> None:
        """Stored: counted and printed; with --wait-replicas, once WAIT says that enough replicas
        have them. `replicas` None: WAIT's reply was lost with the connection; WAIT covers every
        earlier write on that server, so the WAIT after the next XADD confirms these (`awaiting`)."""
        if isinstance(replicas, Exception):  # WAIT refused (not allowed for this user, say)
            raise replicas
        if replicas is None and self.wait_replicas:
            self.awaiting += zip(ids, readings)
            return
        self.last_id = ids[-1]  # stored for good: a look after a lost reply starts after it
        if not self.wait_replicas:
            return self.stored(ids)
        ids, self.awaiting = [i for i, _ in self.awaiting] + ids, []
        if replicas < self.wait_replicas:
            self.not_confirmed(ids, replicas)
        else:
            self.stored(ids)

    def stored(self, ids) -> None:
        """Redis stored these readings: count them and print `message <id> sent` for each."""
        self.sent += len(ids)
        if not self.quiet and ids:
            sys.stdout.write("".join(f"message {i.decode()} sent\n" for i in ids))
            sys.stdout.flush()

    def not_confirmed(self, ids, replicas: int | None) -> None:
        """Stored, but WAIT timed out before --wait-replicas replicas had them (or never came): said, and counted."""
        self.unconfirmed += len(ids)
        one = len(ids) == 1
        which = f"message {ids[0].decode()}" if one else f"{len(ids)} messages {ids[0].decode()}..{ids[-1].decode()}"
        n = self.wait_replicas
        why = (
            ": the connection was lost before WAIT answered"
            if replicas is None
            else f" within {self.wait_ms} ms (only {replicas} had {'it' if one else 'them'})"
        )
        self.say(f"{which} stored but not confirmed by {n} replica{'s' * (n != 1)}{why}; not counted as sent")

    def wait_until_back(self, exc: Exception) -> None:
        """Redis went away: say so once, and wait until it answers again (Ctrl-C ends the wait)."""
        self.reconnects += 1
        self.connection.wait_until_back(self.stop, exc)

    def wait_if_full(self, exc: Exception) -> None:
        """Redis at maxmemory refuses writes with OOM: wait and retry, saying so once a run; Ctrl-C
        ends the wait (Stopped). A cluster's slot that moved (MOVED, ASK, TRYAGAIN): learn where
        it is now, and retry."""
        if isinstance(exc, MOVED) and self.connection.cluster:
            self.connection.db.nodes_manager.initialize()
            self.stop.sleep(0.05)
            return
        if not isinstance(exc, rex.OutOfMemoryError):
            raise exc
        if self.full_since is None:
            self.full_since = time.monotonic()
        if not self.said_full:
            self.said_full = True
            self.say(f"Redis at {self.connection.where} is full (OOM); retrying until it has room (Ctrl-C stops)")
        self.stop.sleep(0.5)
        if self.stop:
            raise self.stopped("full")

    def room_again(self) -> None:
        waited = time.monotonic() - self.full_since
        self.full_for, self.full_since = self.full_for + waited, None
        if not self.said_room:  # once: Redis at the edge of full has room, then none, many times
            self.said_room = True
            self.say(f"Redis has room again after {waited:.1f}s")

    def full_time(self) -> float:
        return self.full_for + (time.monotonic() - self.full_since if self.full_since is not None else 0.0)

    def stopped(self, why: str, unknown: int = 0) -> Stopped:
        """The one line for Ctrl-C while Redis was `why` (full, unreachable): what was stored, what was not."""
        full = f" (full for {self.full_time():.1f}s in all)" if why == "full" else ""
        if self.count:
            left = f"{self.count - self.stored_count - unknown} not sent"
            left += f", {unknown} sent but not known to be stored (no reply)" if unknown else ""
        else:
            left = f"the reading in hand {'sent but not known to be stored (no reply)' if unknown else 'not sent'}"
        return Stopped(f"stopped while Redis was {why}{full}: {self.stored_count} readings stored, {left}")

    def finish(self, *, full: bool = True) -> None:
        """At the end, said once each: readings whose WAIT never came, readings that may be
        stored twice, and how long Redis was full."""
        if self.progress:
            self.progress.clear()
        if self.awaiting:
            self.not_confirmed([i for i, _ in self.awaiting], None)
            self.awaiting = []
        if self.unchecked:
            self.say(
                f"up to {self.unchecked} readings may have been stored twice: the connection was lost before Redis "
                "answered, and this user cannot read the stream to check (XRANGE not allowed), so they were sent again"
            )
        if full and (self.full_for or self.full_since is not None):
            self.say(f"Redis was full for {self.full_time():.1f}s in all")

    def say(self, line: str) -> None:
        if self.progress:
            self.progress.clear()
        say(line)

    def find_stored(self, readings: list[dict[str, str]]) -> list[dict[str, str]]:
        """After a lost reply: count and print those of `readings` (sent in this order, never
        answered) that the stream holds (stream_pubsub/lost_replies.py), and return the others,
        to be sent again. A user who may not read the stream cannot look: the readings go again,
        and `finish` says how many may be stored twice."""
        if self.readable and self.last_id is not None:
            try:
                found = stored_among(self.connection.db, self.stream, self.last_id, readings)
            except rex.NoPermissionError:
                self.readable = False
        if not self.readable or self.last_id is None:
            self.unchecked += len(readings)
            return readings
        trimmed = trimmed_before(found) if self.maxlen else []
        if found:
            places = sorted(found)
            self.confirm([found[place] for place in places], None, [readings[place] for place in places])
        if trimmed:
            self.sent += len(trimmed)
            self.say(
                f"{len(trimmed)} readings were stored, then trimmed by --maxlen before they could be looked up: "
                "counted as sent, their IDs unknown"
            )
        return [r for place, r in enumerate(readings) if place not in found and place not in trimmed]

    def send_many(self, make_reading, count: int, *, entry_id: str = "*", patient: bool = True) -> None:
        """`count` readings from make_reading(), in batches of BATCH pipelined XADDs.

        A batch is one write of XADDs that hiredis packed. Redis answers them in order, each with
        the ID it gave the entry, or with an error (OOM) for a reading it did not store. The next
        batch is made and packed while Redis works through the one just written. With
        --wait-replicas the batch ends with WAIT (one reading with --interval: XADD then WAIT).
        Not patient: a server that goes away is an error now (the first reading of a run).
        """
        if self.last_id is None and self.readable:  # once a run: producer.py has done it before its first reading
            self.begin()
        batches = self.batches(make_reading, count, entry_id)
        readings, packed, upcoming = [], b"", None
        unsure = []  # sent, but the connection was lost before Redis answered them
        wait = [self.wait] if self.wait else []
        pool = conn = None
        try:
            while True:
                if not readings and not unsure:  # the batch in hand is done
                    if self.stop:  # Ctrl-C: the batch made ahead is not sent
                        return
                    (readings, packed), upcoming = upcoming or next(batches, ([], b"")), None
                    if not readings:
                        return
                replies, written = [], False
                try:
                    if unsure:  # only what Redis did not store goes again
                        readings, unsure = readings + self.find_stored(unsure), []
                        packed = self.packed(readings)
                        continue
                    if conn is None:
                        pool = self.connection.pool_for(self.stream)  # on a cluster: its master now
                        conn = pool.get_connection()
                    written, timing = True, self.timing
                    sent_at = time.monotonic() if timing else 0.0
                    conn.send_packed_command([packed, *wait])
                    if upcoming is None:  # make the next batch while Redis works on this one
                        upcoming = next(batches, ([], b""))
                    read_replies(conn, len(readings) + len(wait), replies)
                    if timing:  # each reading of the batch waited this long for its answer
                        timing(len(readings), time.monotonic() - sent_at)
                except self.connection.transient as exc:
                    if conn is not None:
                        conn.disconnect()
                        pool.release(conn)
                        conn = None
                    if not patient and not isinstance(exc, rex.BusyLoadingError):
                        raise
                    if written and self.wait and self.readable and self.last_id is not None:
                        # Nothing is safe before its WAIT: a failover may have lost even an XADD
                        # answered. All of it (and what awaited a WAIT) is looked for first.
                        unsure, readings = [reading for _, reading in self.awaiting] + readings, []
                        self.awaiting = []
                    elif written:  # the replies read are kept; the rest are looked for before they go again
                        answered = min(len(replies), len(readings))
                        refused = self.account(readings, replies[:answered], None)
                        readings, unsure = [reading for reading, _ in refused], readings[answered:]
                        packed = self.packed(readings)
                    if self.progress:
                        self.progress.clear()
                    self.wait_until_back(exc)
                    if self.stop:
                        raise self.stopped("unreachable", unknown=len(unsure))
                    continue
                replicas = replies.pop() if wait else 0
                refused = self.account(readings, replies, replicas)
                if self.progress:
                    self.progress.show(self.stored_count)
                if not refused:
                    readings = []
                    continue
                # Only the refused ones are sent again, so what was stored is not stored twice.
                if not patient:
                    raise refused[0][1]
                self.wait_if_full(refused[0][1])
                if isinstance(refused[0][1], MOVED):  # the slot is on another node now
                    pool.release(conn)
                    conn = None
                readings = [reading for reading, _ in refused]
                packed = self.packed(readings)
        except BaseException:
            if conn is not None:
                conn.disconnect()  # replies left unread must not reach the next command on this connection
            raise
        finally:
            if conn is not None:
                pool.release(conn)

    def batches(self, make_reading, count: int, entry_id: str = "*"):
        """(readings, their XADDs packed for one write), BATCH at a time, each made when asked for."""
        for start in range(0, count, BATCH):
            readings = [make_reading() for _ in range(min(BATCH, count - start))]
            yield readings, self.packed(readings, entry_id)

    def packed(self, readings: list[dict[str, str]], entry_id: str = "*") -> bytes:
        """XADD <stream> [MAXLEN [~] N] <id> <field> <value> ..., in the wire format (RESP), one per reading."""
        trim = ("MAXLEN", "~" if self.approximate else "=", self.maxlen) if self.maxlen else ()
        head = ("XADD", self.stream, *trim, entry_id)
        return b"".join([pack_command((*head, *chain.from_iterable(r.items()))) for r in readings])


def read_replies(conn, n: int, replies: list) -> list:
    """The next n replies on the connection, appended to `replies` as they come (what was read
    before the connection broke is kept): an entry ID, or the error Redis answered instead."""
    for _ in range(n):
        try:
            replies.append(conn.read_response())
        except rex.ResponseError as exc:
            replies.append(exc)
    return replies


class Progress:
    """`sent 12,000 of 100,000 readings (12%)` on stderr, rewritten in place at most every 0.2 s,
    for a terminal; cleared before any other line and before the summary."""

    def __init__(self, total: int):
        self.total, self.next_at, self.width = total, 0.0, 0

    def show(self, done: int) -> None:
        if (now := time.monotonic()) < self.next_at:
            return
        self.next_at = now + 0.2
        line = f"sent {done:,} of {self.total:,} readings ({done * 100 // self.total}%)"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0
