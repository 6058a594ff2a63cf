"""Publish random sensor readings to the stream, as in the tutorial.

python producer.py sensor1
"""

from __future__ import annotations

import re
import sys
import time
from itertools import chain

import click
import redis.exceptions as rex
from hiredis import pack_command

import config
from readings import make_reading

# An explicit ID: <milliseconds>-<sequence>, <milliseconds> alone, or <milliseconds>-* (Redis 7+).
ID_PATTERN = re.compile(r"^\d+(-(\d+|\*))?$")
BATCH = 1000  # readings per pipelined round trip when sending without --interval


class Producer:
    def __init__(self, redis: config.Redis, *, stream, sensor, fields, maxlen, exact, quiet, stop):
        self.redis, self.stream, self.sensor, self.fields = redis, stream, sensor, fields
        self.maxlen, self.approximate = maxlen, not exact
        self.quiet, self.stop = quiet, stop
        self.sent = 0
        self.full_since = None  # when Redis first answered OOM for the current attempt

    def send_one(self, entry_id: str = "*", *, patient: bool = True) -> None:
        """One XADD. Patient: retried until stored (Redis down, restarting or full)."""
        reading = make_reading(self.sensor, self.fields)
        while True:
            try:
                new_id = self.redis.db.Stream(self.stream).add(
                    reading, id=entry_id, maxlen=self.maxlen, approximate=self.approximate
                )
                break
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                if not patient and not isinstance(exc, rex.BusyLoadingError):
                    raise  # down at start: say so now; restarting (LOADING): wait for it
                # The XADD may have been stored and only its reply lost: sending it again can
                # store it twice (at-least-once), never zero times.
                self.redis.wait_until_back(self.stop, exc)
            except rex.ResponseError as exc:
                if not patient:
                    raise
                self.wait_if_full(exc)
            if self.stop:
                raise click.ClickException(f"stopped before Redis stored the reading; {self.sent} sent")
        self.reported([new_id])

    def send_many(self, count: int) -> None:
        """`count` readings in batches of BATCH pipelined XADDs (no MULTI: nothing needs to be atomic).

        A batch is one write of XADDs that hiredis packed. Redis answers them in order, each with
        the ID it gave the entry, or with an error (OOM) for a reading it did not store. The next
        batch is made and packed while Redis works through the one just written.
        """
        batches = self.batches(count)
        batch, upcoming = next(batches, None), None
        pool = self.redis.db.connection_pool
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
                    self.redis.wait_until_back(self.stop, exc)  # resend the batch: at-least-once
                    if self.stop:
                        raise click.ClickException(f"stopped with {len(readings)} readings unsent; {self.sent} sent")
                    continue
                self.reported([r for r in replies if not isinstance(r, Exception)])
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

    def batches(self, count: int):
        """(readings, their XADDs packed for one write), BATCH at a time, each made when asked for."""
        for start in range(0, count, BATCH):
            readings = [make_reading(self.sensor, self.fields) for _ in range(min(BATCH, count - start))]
            yield readings, self.packed(readings)

    def packed(self, readings: list[dict[str, str]]) -> bytes:
        """XADD <stream> [MAXLEN [~] N] * <field> <value> ..., in the wire format (RESP), one per reading."""
        trim = ("MAXLEN", "~" if self.approximate else "=", self.maxlen) if self.maxlen else ()
        head = ("XADD", self.stream, *trim, "*")
        return b"".join([pack_command((*head, *chain.from_iterable(r.items()))) for r in readings])

    def wait_if_full(self, exc: Exception) -> None:
        """Redis at maxmemory refuses writes with OOM: wait and retry, saying so once."""
        if not isinstance(exc, rex.OutOfMemoryError):
            raise exc
        if self.full_since is None:
            self.full_since = time.monotonic()
            click.echo(f"Redis at {self.redis.where} is full (OOM); retrying until it has room", err=True)
        self.stop.sleep(0.5)

    def reported(self, ids) -> None:
        if self.full_since is not None and ids:  # a batch refused whole is no room yet
            click.echo(f"Redis has room again after {time.monotonic() - self.full_since:.1f}s", err=True)
            self.full_since = None
        self.sent += len(ids)
        if not self.quiet and ids:
            sys.stdout.write("".join(f"message {i.decode()} sent\n" for i in ids))
            sys.stdout.flush()


def read_replies(conn, n: int) -> list:
    """The next n replies on the connection: an entry ID, or the error Redis answered instead."""
    replies = []
    for _ in range(n):
        try:
            replies.append(conn.read_response())
        except rex.ResponseError as exc:
            replies.append(exc)
    return replies


def _fields(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    pairs = [value.partition("=") for value in values]
    if any(not name or not sep for name, sep, _ in pairs):
        raise click.BadParameter("use NAME=VALUE, like temp=hot")
    return {name: value for name, _, value in pairs}


def _entry_id(ctx, param, value: str | None) -> str | None:
    if value is not None and not ID_PATTERN.match(value):
        raise click.BadParameter("use <milliseconds>-<sequence>, like 1700000000000-0")
    return value


@click.command()
@click.argument("sensor", callback=config.not_empty)
@config.redis_options
@click.option(
    "--count",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many readings to send; 0 sends until Ctrl-C.",
)
@click.option(
    "--interval",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait between readings. Without it, readings go in pipelined batches.",
)
@click.option(
    "--maxlen",
    default=None,
    type=click.IntRange(min=1),
    envvar="STREAM_MAXLEN",
    show_envvar=True,
    help="Cap the stream at about this many entries on every add (XADD MAXLEN ~).",
)
@click.option("--exact", is_flag=True, help="With --maxlen: cap at exactly N (MAXLEN = N, slower).")
@click.option(
    "--id",
    "entry_id",
    default=None,
    callback=_entry_id,
    help="Set the entry ID yourself (one reading); it must be greater than the stream's last ID.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_fields,
    help="Set a field yourself, e.g. --field temp=hot to publish a reading no consumer can use.",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; one summary at the end.")
def main(sensor, redis_url, stream, count, interval, maxlen, exact, entry_id, fields, quiet):
    """Publish random readings of SENSOR (temp, humidity) to the stream.

    \b
        python producer.py sensor1
        python producer.py sensor2 --count 0 --interval 0.5      # until Ctrl-C
        python producer.py sensor3 --count 100000 --quiet         # pipelined, fast

    Redis gives each reading an ID (milliseconds-sequence) and prints it: "message <id> sent".
    """
    if entry_id is not None and count != 1:
        raise click.UsageError("--id sets the ID of one reading; use it with --count 1")
    if exact and maxlen is None:
        raise click.UsageError("--exact goes with --maxlen")
    stop = config.Stop()
    redis = config.Redis(redis_url)
    producer = Producer(
        redis, stream=stream, sensor=sensor, fields=fields, maxlen=maxlen, exact=exact, quiet=quiet, stop=stop
    )
    started = time.monotonic()
    try:
        with redis.errors(key=stream):
            try:
                if count == 1 or interval or count == 0:
                    # The first reading fails fast: a server that is down now is an error, not a wait.
                    producer.send_one(entry_id or "*", patient=False)
                    while not stop and (count == 0 or producer.sent < count):
                        stop.sleep(interval)
                        if not stop:  # Ctrl-C during the wait: nothing more to send
                            producer.send_one()
                else:
                    producer.send_many(count)
            except rex.ResponseError as exc:
                _explain_id_error(exc, entry_id)
                raise
    except config.StopNow:
        sys.exit(130)
    if quiet or count != 1:
        elapsed = time.monotonic() - started
        click.echo(
            f"sent {producer.sent} readings from {sensor} to {stream} in {elapsed:.2f}s "
            f"({producer.sent / max(elapsed, 1e-9):.0f}/s)",
            err=True,
        )


def _explain_id_error(exc: rex.ResponseError, entry_id: str | None) -> None:
    text = str(exc)
    if entry_id is not None and "equal or smaller" in text:
        raise click.ClickException(
            f"ID {entry_id} is not greater than the last ID in the stream; "
            "a manual ID must be greater than every ID before it"
        ) from None
    if entry_id is not None and "greater than 0-0" in text:
        raise click.ClickException("ID 0-0 is not allowed; the smallest ID is 0-1") from None


if __name__ == "__main__":
    main()
