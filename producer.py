"""Publish random sensor readings to the stream, as in the tutorial.

python producer.py sensor1

Make a reading, add it to the stream (XADD), print the ID Redis gave it. Many readings at once
go through the pipelined bulk path in stream_pubsub/publishing.py.
"""

from __future__ import annotations

import re
import sys
import time
from functools import partial

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click
import redis.exceptions as rex
from walrus.containers import Stream

from stream_pubsub import shards as sharding
from stream_pubsub.connection import Connection
from stream_pubsub.publishing import Publisher
from stream_pubsub.reading import make_reading
from stream_pubsub.stopping import Stop, StopNow

# An explicit ID: <milliseconds>-<sequence>, <milliseconds> alone, or <milliseconds>-* (Redis 7+).
ID_PATTERN = re.compile(r"^\d+(-(\d+|\*))?$")


def send_one(publisher: Publisher, reading: dict[str, str], entry_id: str = "*", *, patient: bool = True) -> None:
    """One XADD, the tutorial's `stream.add(reading)`. Patient: retried until stored (Redis down,
    restarting, full, or a cluster's slot moving); otherwise a server that is down is an error now."""
    stream = Stream(publisher.connection.db, publisher.stream)  # walrus, as in the tutorial
    while True:
        try:
            if publisher.wait_replicas:  # XADD, then WAIT until N replicas have it (or the timeout)
                new_id, replicas = publisher.add_confirmed(reading, entry_id)
                if replicas < publisher.wait_replicas:
                    return publisher.not_confirmed([new_id], replicas)
                break
            # XADD <stream> [MAXLEN ~ N] * field value ...: Redis stores the reading and answers
            # with the ID it gave it, <milliseconds>-<sequence> (`*` asks Redis to choose).
            new_id = stream.add(reading, id=entry_id, maxlen=publisher.maxlen, approximate=publisher.approximate)
            break
        except publisher.connection.transient as exc:
            if not patient and not isinstance(exc, rex.BusyLoadingError):
                raise  # down at start: say so now; restarting (LOADING): wait for it
            # The XADD may have been stored and only its reply lost: sending it again can
            # store it twice (at-least-once), never zero times.
            publisher.connection.wait_until_back(publisher.stop, exc)
        except rex.ResponseError as exc:
            if not patient:
                raise
            publisher.wait_if_full(exc)
        if publisher.stop:
            raise click.ClickException(f"stopped before Redis stored the reading; {publisher.sent} sent")
    publisher.stored([new_id])  # prints "message <id> sent"


def _fields(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    pairs = [value.partition("=") for value in values]
    if any(not name or not sep for name, sep, _ in pairs):
        raise click.BadParameter("use NAME=VALUE, like temp=hot")
    return {name: value for name, _, value in pairs}


def _entry_id(ctx, param, value: str | None) -> str | None:
    if value is not None and not ID_PATTERN.match(value):
        raise click.BadParameter("use <milliseconds>-<sequence>, like 1700000000000-0")
    return value


@click.command(cls=config.Command)
@click.argument("sensor", callback=config.not_empty)
@config.redis_options
@config.shards_option
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
@config.maxlen_option("Cap the stream at about this many entries on every add (XADD MAXLEN ~).")
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
@click.option(
    "--wait-replicas",
    default=0,
    type=click.IntRange(min=0),
    help="Count a reading as sent only once this many replicas have it (WAIT); not confirmed in time: said, "
    "and the producer exits 1 at the end.",
)
@click.option(
    "--wait-timeout", default=1000, show_default=True, type=click.IntRange(min=1), help="WAIT's timeout, in ms."
)
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; one summary at the end.")
def main(
    sensor,
    redis_url,
    stream,
    shards,
    count,
    interval,
    maxlen,
    exact,
    entry_id,
    fields,
    wait_replicas,
    wait_timeout,
    quiet,
):
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
    stop, connection = Stop(), Connection(redis_url)
    reading = partial(make_reading, sensor, fields)  # a new random reading each time it is called
    started = time.monotonic()
    try:
        with connection.errors(key=stream):
            connection.check()  # fails fast, in one line, if Redis is down; notices a cluster
            # With --shards N the reading goes to its sensor's shard (stream_pubsub/shards.py).
            n = sharding.resolve(connection.db, stream, shards, where=connection.where)
            key = sharding.keys(stream, n)[sharding.route(sensor, n)]
            publisher = Publisher(connection, stream=key, maxlen=maxlen, exact=exact, quiet=quiet, stop=stop,
                                  wait_replicas=wait_replicas, wait_ms=wait_timeout)  # fmt: skip
            try:
                if count == 1 or interval or count == 0:
                    # The first reading fails fast: a server that is down now is an error, not a wait.
                    send_one(publisher, reading(), entry_id or "*", patient=False)
                    while not stop and (count == 0 or publisher.sent + publisher.unconfirmed < count):
                        stop.sleep(interval)
                        if not stop:  # Ctrl-C during the wait: nothing more to send
                            send_one(publisher, reading())
                else:
                    publisher.send_many(reading, count)
            except rex.ResponseError as exc:
                _explain_id_error(exc, entry_id)
                raise
    except StopNow:
        sys.exit(130)
    if quiet or count != 1 or publisher.unconfirmed:
        elapsed, sent, missed = time.monotonic() - started, publisher.sent, publisher.unconfirmed
        not_confirmed = f"; {missed} stored but not confirmed by {wait_replicas} replicas" if missed else ""
        click.echo(f"sent {sent} readings from {sensor} to {publisher.stream} in {elapsed:.2f}s "
                   f"({sent / max(elapsed, 1e-9):.0f}/s){not_confirmed}", err=True)  # fmt: skip
    sys.exit(1 if publisher.unconfirmed else 0)


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
