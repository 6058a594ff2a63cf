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

from stream_pubsub import own_metrics
from stream_pubsub import shards as sharding
from stream_pubsub.connection import Connection, eviction_risk
from stream_pubsub.manual_ids import id_error, id_refused, id_warning
from stream_pubsub.producer_metrics import ProducerMetrics
from stream_pubsub.publishing import Publisher, Stopped
from stream_pubsub.reading import make_reading
from stream_pubsub.stopping import Stop, StopNow
from stream_pubsub.telling import say

# An explicit ID: <milliseconds>-<sequence>, <milliseconds> alone, or <milliseconds>-* (Redis 7+).
ID_PATTERN = re.compile(r"^\d+(-(\d+|\*))?$")


def send_one(publisher: Publisher, reading: dict[str, str], entry_id: str = "*", *, patient: bool = True) -> None:
    """One XADD, the tutorial's `stream.add(reading)`. Patient: retried until stored (Redis down,
    restarting, full, or a cluster's slot moving); otherwise a server that is down is an error now."""
    if publisher.wait_replicas:  # XADD, then WAIT until N replicas have it (or the timeout): as a batch of one
        return publisher.send_many(lambda: reading, 1, entry_id=entry_id, patient=patient)
    stream = Stream(publisher.connection.db, publisher.stream)  # walrus, as in the tutorial
    unsure = False  # sent, but the connection was lost before Redis answered
    while True:
        try:
            # The XADD may have been stored and only its reply lost: look before sending it again.
            if unsure and not publisher.find_stored([reading]):
                return  # it was stored: counted and printed
            unsure = True
            # XADD <stream> [MAXLEN ~ N] * field value ...: Redis stores the reading and answers
            # with the ID it gave it, <milliseconds>-<sequence> (`*` asks Redis to choose).
            timing, sent_at = publisher.timing, time.monotonic()
            new_id = stream.add(reading, id=entry_id, maxlen=publisher.maxlen, approximate=publisher.approximate)
            if timing:  # --metrics: how long Redis took to answer
                timing(1, time.monotonic() - sent_at)
            return publisher.account([reading], [new_id])  # prints "message <id> sent"
        except publisher.connection.transient as exc:
            if not patient and not isinstance(exc, rex.BusyLoadingError):
                raise  # down at start: say so now; restarting (LOADING): wait for it
            publisher.wait_until_back(exc)
        except rex.ResponseError as exc:
            unsure = False  # refused (full, or the slot moved): not stored
            if not patient:
                raise
            publisher.wait_if_full(exc)
        if publisher.stop:
            raise publisher.stopped("unreachable", unknown=int(unsure))


def _fields(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    pairs = [value.partition("=") for value in values]
    if any(not name or not sep for name, sep, _ in pairs):
        raise click.BadParameter("use NAME=VALUE, like temp=hot")
    for value in values:
        config.not_empty(ctx, param, value)  # (text that is not UTF-8 is refused, in one line)
    return {name: value for name, _, value in pairs}


def _entry_id(ctx, param, value: str | None) -> str | None:
    if value is not None and not ID_PATTERN.match(value):
        raise click.BadParameter("use <milliseconds>-<sequence>, like 1700000000000-0")
    if value is not None and (why := id_refused(value)):
        raise click.BadParameter(f"{value}: {why}")
    if value is not None and (warning := id_warning(value)):
        click.echo(warning, err=True)
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
    help="Set the entry ID yourself (one reading): <ms>-<seq>, <ms>-* or <ms>, greater than the stream's last "
    "ID. Each number at most 2**64-1; the milliseconds below it and the sequence too (nothing could follow). "
    "More than a day ahead of now: said, and sent.",
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
    "and the producer exits 1 at the end. The connection waits up to --wait-timeout longer for replies.",
)
@click.option(
    "--wait-timeout",
    "wait_ms",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="WAIT's timeout, in ms.",
)
@config.metrics_option(":9101", "readings sent, not confirmed, send time, reconnects (with --count 0 or over 1)")
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; one summary at the end.")
@click.pass_context
def main(
    ctx,
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
    wait_ms,
    metrics,
    quiet,
):
    """Publish random readings of SENSOR (temp, humidity) to the stream.

    \b
        python producer.py sensor1
        python producer.py sensor2 --count 0 --interval 0.5      # until Ctrl-C
        python producer.py sensor3 --count 100000 --quiet         # pipelined, fast

    Redis gives each reading an ID (milliseconds-sequence) and prints it: "message <id> sent".
    A reading whose reply was lost with the connection is looked for in the stream before it is
    sent again. Ctrl-C (or SIGTERM) stops after the batch in hand, exit 0; while Redis is down or
    full it stops at once, saying what was stored and what was not, exit 1; a second Ctrl-C quits
    at once, exit 130.
    """
    if entry_id is not None and count != 1:
        raise click.UsageError("--id sets the ID of one reading; use it with --count 1")
    if exact and maxlen is None:
        raise click.UsageError("--exact goes with --maxlen")
    if metrics and count == 1:  # one reading: nothing to watch (METRICS_ADDRESS of a deployment: ignored)
        if ctx.get_parameter_source("metrics") != click.core.ParameterSource.ENVIRONMENT:
            raise click.UsageError("--metrics is for a producer that runs on: give --count 0 (until Ctrl-C) or more")
        metrics = None
    listening = own_metrics.bind(metrics)  # before Redis: a bad --metrics is one line, exit 2
    # WAIT blocks on the server for up to --wait-timeout: the socket must wait as long, or more.
    stop, connection = Stop(), Connection(redis_url, read_timeout=wait_ms / 1000 if wait_replicas else 0)
    reading = partial(make_reading, sensor, fields)  # a new random reading each time it is called
    bulk, started = not (count == 1 or interval or count == 0), time.monotonic()
    # A progress line on stderr: for a person at a terminal, and not between `message` lines there.
    progress = bulk and sys.stderr.isatty() and (quiet or not sys.stdout.isatty())
    more = dict(count=count, wait_replicas=wait_replicas, wait_ms=wait_ms, progress=progress)
    try:
        with connection.errors(key=stream):
            connection.check()  # fails fast, in one line, if Redis is down; notices a cluster
            # With --shards N the reading goes to its sensor's shard (stream_pubsub/shards.py).
            n = sharding.resolve(connection.db, stream, shards, where=connection.where)
            shard = sharding.route(sensor, n)
            key = sharding.keys(stream, n)[shard]
            if risk := eviction_risk(connection.db, [key]):  # a full Redis that evicts could delete the stream
                say(risk)
            publisher = Publisher(connection, stream=key, maxlen=maxlen, exact=exact, quiet=quiet, stop=stop, **more)
            if listening:  # served from a thread from now on (stream_pubsub/producer_metrics.py)
                shard = shard if n > 1 else None
                ProducerMetrics(listening, publisher, stream=stream, shard=shard, db=connection.db)
            try:
                publisher.begin()  # the stream's last ID: where to look if a reply is lost
                if not bulk:
                    # The first reading fails fast: a server that is down now is an error, not a wait.
                    send_one(publisher, reading(), entry_id or "*", patient=False)
                    while not stop and (count == 0 or publisher.stored_count < count):
                        stop.sleep(interval)
                        if not stop:  # Ctrl-C during the wait: nothing more to send
                            send_one(publisher, reading())
                else:
                    publisher.send_many(reading, count)
            except rex.ResponseError as exc:
                if entry_id is not None and (why := id_error(str(exc), entry_id)):
                    raise click.ClickException(why) from None
                raise
            except Stopped:  # Ctrl-C while Redis was down or full: the error says what was stored
                publisher.finish(full=False)
                raise
    except StopNow:
        sys.exit(130)
    publisher.finish()
    if quiet or count != 1 or publisher.unconfirmed:
        elapsed, sent, missed = time.monotonic() - started, publisher.sent, publisher.unconfirmed
        not_confirmed = f"; {missed} stored but not confirmed by {wait_replicas} replicas" if missed else ""
        rate = f"{sent / max(elapsed, 1e-9):.0f}/s"
        click.echo(
            f"sent {sent} readings from {sensor} to {publisher.stream} in {elapsed:.2f}s ({rate}){not_confirmed}",
            err=True,
        )
    sys.exit(1 if publisher.unconfirmed else 0)


if __name__ == "__main__":
    main()
