"""Adding readings to the stream: what Redis stored, what it refused, and the fast bulk path.

One XADD per round trip is what the tutorial's producer does, and producer.py does it for one
reading or with --interval. Without --interval, `send_many` writes BATCH XADDs at a time, packed by
hiredis into one write (a pipeline, no MULTI: nothing needs to be atomic), and makes the next
batch while Redis works through the one just written.

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

import click
import redis.exceptions as rex
from hiredis import pack_command

BATCH = 1000  # readings per pipelined round trip when sending without --interval
MOVED = (rex.AskError, rex.TryAgainError, rex.ClusterDownError)  # a cluster's slot is elsewhere, or moving


class Publisher:
    def __init__(
        self, connection, *, stream: str, maxlen, exact: bool, quiet: bool, stop, wait_replicas=0, wait_ms=1000
    ):
        self.connection, self.stream = connection, stream
        self.maxlen, self.approximate = maxlen, not exact
        self.quiet, self.stop = quiet, stop
        self.wait_replicas, self.wait_ms = wait_replicas, wait_ms
        self.sent = 0
        self.unconfirmed = 0  # stored, but not on --wait-replicas replicas in time
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

    def not_confirmed(self, ids, replicas: int) -> None:
        """Stored, but WAIT timed out before --wait-replicas replicas had them: said, and counted."""
        self.unconfirmed += len(ids)
        which = (
            f"message {ids[0].decode()}"
            if len(ids) == 1
            else f"{len(ids)} messages {ids[0].decode()}..{ids[-1].decode()}"
        )
        click.echo(
            f"{which} stored but not confirmed by {self.wait_replicas} replica{'s' * (self.wait_replicas != 1)} "
            f"within {self.wait_ms} ms (only {replicas} had {'it' if len(ids) == 1 else 'them'}); not counted as sent",
            err=True,
        )

    def wait_if_full(self, exc: Exception) -> None:
        """Redis at maxmemory refuses writes with OOM: wait and retry, saying so once. A cluster's
        slot that moved (MOVED, ASK, TRYAGAIN): learn where it is now, and retry."""
        if isinstance(exc, MOVED) and self.connection.cluster:
            self.connection.db.nodes_manager.initialize()
            self.stop.sleep(0.05)
            return
        if not isinstance(exc, rex.OutOfMemoryError):
            raise exc
        if self.full_since is None:
            self.full_since = time.monotonic()
            click.echo(f"Redis at {self.connection.where} is full (OOM); retrying until it has room", err=True)
        self.stop.sleep(0.5)

    def add_confirmed(self, reading: dict, entry_id: str = "*") -> tuple[bytes, int]:
        """XADD then WAIT, on the connection of the server that holds the stream: (ID, replicas that have it)."""
        db = self.connection.db
        node = db.get_node_from_key(self.stream).redis_connection if self.connection.cluster else db
        with node.pipeline(transaction=False) as pipe:
            pipe.xadd(self.stream, reading, id=entry_id, maxlen=self.maxlen, approximate=self.approximate)
            pipe.wait(self.wait_replicas, self.wait_ms)
            new_id, replicas = pipe.execute()
        return new_id, replicas

    def send_many(self, make_reading, count: int) -> None:
        """`count` readings from make_reading(), in batches of BATCH pipelined XADDs.

        A batch is one write of XADDs that hiredis packed. Redis answers them in order, each with
        the ID it gave the entry, or with an error (OOM) for a reading it did not store. The next
        batch is made and packed while Redis works through the one just written.
        """
        batches = self.batches(make_reading, count)
        batch, upcoming = next(batches, None), None
        pool = conn = None
        try:
            while batch:
                readings, packed = batch
                try:
                    if conn is None:
                        pool = self.connection.pool_for(self.stream)  # on a cluster: its master now
                        conn = pool.get_connection()
                    wait = [pack_command(("WAIT", self.wait_replicas, self.wait_ms))] if self.wait_replicas else []
                    conn.send_packed_command([packed, *wait])
                    if upcoming is None:  # make the next batch while Redis works on this one
                        upcoming = next(batches, ())
                    replies = read_replies(conn, len(readings) + len(wait))
                except self.connection.transient as exc:
                    conn.disconnect()
                    pool.release(conn)
                    conn = None
                    self.connection.wait_until_back(self.stop, exc)  # resend the batch: at-least-once
                    if self.stop:
                        raise click.ClickException(f"stopped with {len(readings)} readings unsent; {self.sent} sent")
                    continue
                replicas = replies.pop() if wait else None
                ids = [r for r in replies if not isinstance(r, Exception)]
                if wait and isinstance(replicas, int) and replicas < self.wait_replicas and ids:
                    self.not_confirmed(ids, replicas)
                else:
                    self.stored(ids)
                # Only the refused ones are sent again, so what was stored is not stored twice.
                refused = [(reading, r) for reading, r in zip(readings, replies) if isinstance(r, Exception)]
                if refused:
                    self.wait_if_full(refused[0][1])
                    if isinstance(refused[0][1], MOVED):  # the slot is on another node now
                        pool.release(conn)
                        conn = None
                    readings = [reading for reading, _ in refused]
                    batch = readings, self.packed(readings)
                elif self.stop:  # Ctrl-C: the batch in hand is done; the one made ahead is not sent
                    return
                else:
                    batch, upcoming = upcoming, None
        except BaseException:
            if conn is not None:
                conn.disconnect()  # replies left unread must not reach the next command on this connection
            raise
        finally:
            if conn is not None:
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
