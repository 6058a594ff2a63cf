"""Adding readings to the stream: what Redis stored, what it refused, and the fast bulk path.

One XADD per round trip is what the tutorial's producer does, and producer.py does it for one
reading or with --interval. Without --interval, `send_many` writes BATCH XADDs at a time, packed by
hiredis into one write (a pipeline, no MULTI: nothing needs to be atomic), and makes the next
batch while Redis works through the one just written.
"""

from __future__ import annotations

import sys
import time
from itertools import chain

import click
import redis.exceptions as rex
from hiredis import pack_command

BATCH = 1000  # readings per pipelined round trip when sending without --interval


class Publisher:
    def __init__(self, connection, *, stream: str, maxlen: int | None, exact: bool, quiet: bool, stop):
        self.connection, self.stream = connection, stream
        self.maxlen, self.approximate = maxlen, not exact
        self.quiet, self.stop = quiet, stop
        self.sent = 0
        self.full_since = None  # when Redis first answered OOM for the current attempt

    def stored(self, ids) -> None:
        """Redis stored these readings: count them and print `message <id> sent` for each."""
        if self.full_since is not None and ids:  # a batch refused whole is no room yet
            click.echo(f"Redis has room again after {time.monotonic() - self.full_since:.1f}s", err=True)
            self.full_since = None
        self.sent += len(ids)
        if not self.quiet and ids:
            sys.stdout.write("".join(f"message {i.decode()} sent\n" for i in ids))
            sys.stdout.flush()

    def wait_if_full(self, exc: Exception) -> None:
        """Redis at maxmemory refuses writes with OOM: wait and retry, saying so once."""
        if not isinstance(exc, rex.OutOfMemoryError):
            raise exc
        if self.full_since is None:
            self.full_since = time.monotonic()
            click.echo(f"Redis at {self.connection.where} is full (OOM); retrying until it has room", err=True)
        self.stop.sleep(0.5)

    def send_many(self, make_reading, count: int) -> None:
        """`count` readings from make_reading(), in batches of BATCH pipelined XADDs.

        A batch is one write of XADDs that hiredis packed. Redis answers them in order, each with
        the ID it gave the entry, or with an error (OOM) for a reading it did not store. The next
        batch is made and packed while Redis works through the one just written.
        """
        batches = self.batches(make_reading, count)
        batch, upcoming = next(batches, None), None
        pool = self.connection.db.connection_pool
        conn = pool.get_connection()
        try:
            while batch:
                readings, packed = batch
                try:
                    conn.send_packed_command([packed])
                    if upcoming is None:  # make the next batch while Redis works on this one
                        upcoming = next(batches, ())
                    replies = read_replies(conn, len(readings))
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    conn.disconnect()
                    self.connection.wait_until_back(self.stop, exc)  # resend the batch: at-least-once
                    if self.stop:
                        raise click.ClickException(f"stopped with {len(readings)} readings unsent; {self.sent} sent")
                    continue
                self.stored([r for r in replies if not isinstance(r, Exception)])
                # Only the refused ones are sent again, so what was stored is not stored twice.
                refused = [(reading, r) for reading, r in zip(readings, replies) if isinstance(r, Exception)]
                if refused:
                    self.wait_if_full(refused[0][1])
                    readings = [reading for reading, _ in refused]
                    batch = readings, self.packed(readings)
                elif self.stop:  # Ctrl-C: the batch in hand is done; the one made ahead is not sent
                    return
                else:
                    batch, upcoming = upcoming, None
        except BaseException:
            conn.disconnect()  # replies left unread must not reach the next command on this connection
            raise
        finally:
            pool.release(conn)

    def batches(self, make_reading, count: int):
        """(readings, their XADDs packed for one write), BATCH at a time, each made when asked for."""
        for start in range(0, count, BATCH):
            readings = [make_reading() for _ in range(min(BATCH, count - start))]
            yield readings, self.packed(readings)

    def packed(self, readings: list[dict[str, str]]) -> bytes:
        """XADD <stream> [MAXLEN [~] N] * <field> <value> ..., in the wire format (RESP), one per reading."""
        trim = ("MAXLEN", "~" if self.approximate else "=", self.maxlen) if self.maxlen else ()
        head = ("XADD", self.stream, *trim, "*")
        return b"".join([pack_command((*head, *chain.from_iterable(r.items()))) for r in readings])


def read_replies(conn, n: int) -> list:
    """The next n replies on the connection: an entry ID, or the error Redis answered instead."""
    replies = []
    for _ in range(n):
        try:
            replies.append(conn.read_response())
        except rex.ResponseError as exc:
            replies.append(exc)
    return replies
