"""Read sensor readings through a consumer group, process them, acknowledge them.

The tutorial's consumer, made safe: nothing read is lost when a consumer crashes, fails or
Redis goes away, and nothing is retried forever. The loop is `Consumer.run`; each step of the
group's upkeep it calls is in stream_pubsub/ (group.py, claiming.py, dead_letters.py, trimming.py).
"""

from __future__ import annotations

import re
import sys
import time

import click
import redis.exceptions as rex

import config
from stream_pubsub import group as upkeep  # the consumer group's upkeep: create, lost, own pending
from stream_pubsub.claiming import Sweep
from stream_pubsub.connection import Connection
from stream_pubsub.dead_letters import dead_letter_key
from stream_pubsub.processing import Processor
from stream_pubsub.status import StatusLine
from stream_pubsub.stopping import Stop, StopNow
from stream_pubsub.trimming import UnreadTrims

ID_PATTERN = re.compile(r"^\d+(-\d+)?$")


class Consumer:
    def __init__(self, connection: Connection, *, stream, group, name, count, block, burst, quiet, **settings):
        """settings: claim_idle, max_deliveries, dlq, fail_rate, stats_interval and stop (see --help)."""
        self.connection, self.db = connection, connection.db
        self.stream, self.group, self.name = stream, group, name
        self.count, self.block, self.burst, self.quiet = count, block, burst, quiet
        self.stop = settings["stop"]
        self.status = StatusLine(name, settings["stats_interval"])
        self.counts = self.status.counts
        self.entries = upkeep.group_stream(self.db, group, stream, name)  # the walrus consumer group's stream
        self.sweep = Sweep(self.entries, name, claim_idle=settings["claim_idle"], count=count, where=connection.where)
        self.trims = UnreadTrims(self.db, stream, group, name, count)
        self.processor = Processor(
            self.db, stream=stream, group=group, consumer=name, dlq=settings["dlq"], quiet=quiet, counts=self.counts,
            max_deliveries=settings["max_deliveries"], fail_rate=settings["fail_rate"], say=self.warn,
            describe=connection.describe,
        )  # fmt: skip
        self.unacked: list[bytes] = []  # processed, but the XACK did not get through yet

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        recover = True  # on start, and after every reconnect
        while not self.stop:
            try:
                if recover:  # a read whose reply was lost still put entries on our pending list
                    self.recover_own_pending()
                    recover = False
                got = self.read_new()
                swept = self.claim_idle()
                self.status.report_if_due(lag=self.group_lag)
                if self.burst and not got and not swept and not self.stop:
                    self.flush_acks()
                    if not upkeep.holds_pending(self.entries, self.name):
                        break  # --burst: nothing new, nothing claimable, nothing of ours pending
                    time.sleep(min(0.1, self.sweep.until()))
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                self.connection.wait_until_back(self.stop, exc)  # one line, then backoff until it answers
                recover = True
            except rex.ResponseError as exc:
                if not upkeep.group_lost(exc):
                    raise
                self.unacked.clear()  # their group is gone; an XACK would do nothing
                self.processor.last_error.clear()
                self.warn(upkeep.recreate_group(self.db, self.stream, self.group))  # XGROUP CREATE ... 0 MKSTREAM
        self.flush_acks()

    def recover_own_pending(self) -> None:
        """Process our own pending entries: delivered to this name before, never acknowledged."""
        self.flush_acks()
        # XREADGROUP with ID 0 instead of `>` re-reads them (it never blocks), oldest first
        for batch in upkeep.own_pending(self.entries, self.count, self.stop):
            self.process(batch, self.delivered(batch))

    def read_new(self) -> int:
        """Read entries never delivered to anyone (`>`), process them."""
        # XACK of the last batch + XREADGROUP `>` (and the XINFO that count what MAXLEN trimmed unread), one MULTI
        batch, trimmed = self.trims.read(self.unacked)
        self.unacked.clear()
        if trimmed:  # MAXLEN/XTRIM removed entries before this group read them: said, never silent
            self.counts.trimmed_unread += trimmed
            self.warn(self.trims.warning(trimmed))
        if not batch and not self.burst:
            # Nothing waiting: BLOCK until an XADD (at most --block ms). A blocked reader is served
            # right after the XADD, before any later trim, so this read never skips entries.
            batch = self.entries.read(self.count, block=self.block)
        if batch:
            self.process(batch)
        return len(batch)

    def claim_idle(self) -> int:
        """XAUTOCLAIM: entries idle longer than --claim-idle on any consumer become ours, then processed."""
        claimed = 0
        if self.sweep.due():
            for batch, gone in self.sweep.batches(self.stop):
                if gone:  # Redis 7.0+ dropped pending IDs whose data was trimmed
                    self.counts.trimmed_pending += gone
                    self.warn(f"{gone} pending entries had been trimmed from the stream; dropped from the pending list")
                if batch:
                    claimed += len(batch)
                    self.counts.claimed += len(batch)
                    self.process(batch, self.delivered(batch))
        return claimed

    # -- processing --------------------------------------------------------------------
    def process(self, batch, deliveries: dict[bytes, int] | None = None) -> None:
        """process_message for each entry (stream_pubsub/processing.py); what succeeded waits for one XACK.

        The XACK goes out with the next read, in the same round trip, and always before this
        consumer blocks, so a crash can redeliver at most the batch in hand.
        """
        self.unacked += self.processor.handle(batch, deliveries)

    def flush_acks(self) -> None:
        """XACK everything processed, in one command (a lost connection keeps them for later)."""
        if self.unacked:
            self.entries.ack(*self.unacked)
            self.unacked.clear()

    def delivered(self, batch) -> dict[bytes, int]:
        return upkeep.deliveries(self.entries, self.name, batch, len(self.processor.last_error) + len(self.unacked))

    def group_lag(self) -> int | None:
        return self.trims.lag(upkeep.find_group(self.db.xinfo_groups(self.stream), self.group))

    def warn(self, text: str) -> None:
        click.echo(f"{self.name}: {text}", err=True)


def _start_id(ctx, param, value: str) -> str:
    if value != "$" and not ID_PATTERN.match(value):
        raise click.BadParameter("use $ (only new entries), 0 (the whole history) or an ID like 1700000000000-0")
    return value


@click.command()
@click.argument("group", callback=config.not_empty)
@click.argument("consumer", callback=config.not_empty)
@config.redis_options
@click.option(
    "--start-from",
    default="$",
    show_default=True,
    callback=_start_id,
    help="Where a NEW group starts: $ = only entries added from now on, 0 = the whole "
    "history, or an ID. An existing group keeps its position.",
)
@click.option(
    "--block",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 60_000),
    help="How long one read waits for new entries, in milliseconds.",
)
@click.option(
    "--count", default=500, show_default=True, type=click.IntRange(min=1), help="Most entries per read (and per XACK)."
)
@click.option(
    "--burst",
    is_flag=True,
    help="Process what is there (own pending, claimable and new entries), then exit 0. "
    "Entries that failed are retried (after --claim-idle) until processed or "
    "dead-lettered before it exits.",
)
@click.option(
    "--claim-idle",
    default=60_000,
    show_default=True,
    type=click.IntRange(min=1),
    envvar=config.CLAIM_IDLE,
    show_envvar=True,
    help="Claim pending entries idle for longer than this many milliseconds (XAUTOCLAIM).",
)
@click.option(
    "--max-deliveries",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    envvar=config.MAX_DELIVERIES,
    show_envvar=True,
    help="Dead-letter an entry delivered more often than this.",
)
@config.dead_letter_option
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fail this fraction of readings at random, to watch retries and dead letters.",
)
@click.option(
    "--stats-interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between status lines on stderr (0: none).",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; only the summary.")
def main(group, consumer, redis_url, stream, start_from, dlq, **settings):
    """Read readings from the stream as CONSUMER of consumer group GROUP.

    Each entry of the stream goes to exactly one consumer of a group, so start several
    (in several terminals) to share the work:

    \b
        python consumer.py group1 c1
        python consumer.py group1 c2

    On start a consumer first processes its own pending entries (read before, never
    acknowledged), then waits for new ones. Every reading is acknowledged (XACK) only after
    it was processed. A failed one stays pending and is retried; one that is invalid or
    failed more than --max-deliveries times moves to the dead-letter stream. Entries left
    idle by a consumer that died are claimed after --claim-idle.

    Ctrl-C (or SIGTERM) finishes the batch in hand and exits; a second Ctrl-C quits at once.
    """
    stop = Stop()
    connection = Connection(redis_url, read_timeout=settings["block"] / 1000)
    me = Consumer(connection, stream=stream, group=group, name=consumer, dlq=dlq or dead_letter_key(stream),
                  stop=stop, **settings)  # fmt: skip
    started = time.monotonic()
    try:
        with connection.errors(key=stream):
            connection.check()
            # XGROUP CREATE ... MKSTREAM, once: an existing group keeps its position
            if upkeep.ensure_group(connection.db, stream, group, start_from):
                click.echo(f"created group {group} on {stream}, starting at {start_from}", err=True)
            # An XACK of no real entry: a user without the right to acknowledge learns it now,
            # before anything is read and processed only to stay pending.
            connection.db.xack(stream, group, "0-0")
            me.run()
    except StopNow:
        click.echo(f"{consumer}: quit at once; unacknowledged entries stay pending ({me.counts.summary()})", err=True)
        sys.exit(130)
    click.echo(f"{consumer}: stopped after {time.monotonic() - started:.1f}s: {me.counts.summary()}", err=True)


if __name__ == "__main__":
    main()
