"""Read sensor readings through a consumer group, process them, acknowledge them.

The tutorial's consumer, made safe: nothing read is lost when a consumer crashes, fails or
Redis goes away, and nothing is retried forever. The loop is `Consumer.run`; each step of the
group's upkeep it calls is in stream_pubsub/ (group.py, claiming.py, processing.py, waiting.py).
"""

from __future__ import annotations

import sys
import time

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click
import redis.exceptions as rex

from stream_pubsub import handler as handlers
from stream_pubsub import shards as sharding
from stream_pubsub.connection import Connection
from stream_pubsub.group import GroupStream, ensure_group, group_lost
from stream_pubsub.ids import ID
from stream_pubsub.keeping import Keeper
from stream_pubsub.processing import Processor
from stream_pubsub.replies import raw_replies
from stream_pubsub.status import StatusLine
from stream_pubsub.stopping import Stop, StopNow
from stream_pubsub.waiting import waiter


class Consumer:
    def __init__(self, connection: Connection, layout, *, group, name, count, block, burst, handler, **settings):
        """layout: (stream key, dead-letter key, fan-out key) per shard; settings: see --help."""
        self.connection, self.db, self.group, self.name, self.layout = connection, connection.db, group, name, layout
        self.count, self.block, self.burst, self.stop = count, block, burst, settings["stop"]
        self.status = StatusLine(name, settings["stats_interval"])
        self.counts = self.status.counts
        self.shards = [GroupStream(connection, key, group=group, consumer=name, count=count, dlq=dlq, fanout=fanout,
                                   claim_idle=settings["claim_idle"], say=self.warn)
                       for key, dlq, fanout in layout]  # fmt: skip
        self.processor = Processor(handler, group=group, consumer=name, max_deliveries=settings["max_deliveries"],
                                   fail_rate=settings["fail_rate"], fanout=bool(layout[0][2]), counts=self.counts,
                                   say=self.warn, describe=connection.describe)  # fmt: skip
        self.keeper = Keeper(name, settings["claim_idle"])  # keeps slow work from being claimed
        self.waiter = waiter(connection, self.shards, group=group, consumer=name, count=count, block_ms=block)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        recover = True  # on start, and after every reconnect
        while not self.stop:
            try:
                if recover:  # a read whose reply was lost still put entries on our pending list
                    self.recover_own_pending()
                    recover = False
                got = self.read_new() + self.claim_idle()
                self.status.report_if_due(lag=self.group_lag)
                if got or self.stop:
                    continue
                if self.burst:  # nothing new, nothing claimable: done once nothing of ours is pending
                    if self.drained():
                        break
                    time.sleep(min(0.1, *(shard.sweep.until() for shard in self.shards)))
                else:
                    self.wait_for_new()
            except self.connection.transient as exc:  # Redis went away, or a cluster's slot moved
                recover = self.reconnect(exc)
            except rex.ResponseError as exc:
                if self.connection.moved(exc):  # Redis 7.0 unblocks a reader so when a slot moves
                    recover = self.reconnect(exc)
                elif group_lost(exc):  # FLUSHALL or DEL removed the group: XGROUP CREATE ... 0 again
                    self.regroup()
                else:
                    raise
        self.commit_all()
        self.waiter.close()

    def reconnect(self, exc: Exception) -> bool:
        """One line, back off until it answers, then read again, first what is pending with us."""
        for shard in self.shards:
            shard.lost_connection()
        self.connection.wait_until_back(self.stop, exc)
        return True

    def regroup(self) -> None:  # the group or the whole stream is gone
        for shard in self.shards:
            shard.forget()
            if ensure_group(self.db, shard.key, self.group, "0"):  # (not created: it had only moved)
                self.warn(shard.group_lost_message())
        self.layout.record(self.db)  # the number of shards, for the producers, if it went too

    def recover_own_pending(self) -> None:
        """Process our own pending entries: delivered to this name before, never acknowledged."""
        self.commit_all()
        for shard in self.shards:
            # XREADGROUP with ID 0 instead of `>` re-reads them (it never blocks), oldest first
            for batch in shard.own_pending(self.stop):
                self.process(shard, batch, self.delivered(shard, batch))

    def read_new(self) -> int:
        """Read the entries never delivered to anyone (`>`) on each shard that may have some."""
        got = 0
        for shard in self.shards:
            if not shard.maybe_more or self.stop:
                continue
            # XREADGROUP > one read ahead; each half's XACK (+ fan-out XADDs, one MULTI) goes with the
            # next read, and the XINFO that count what MAXLEN trimmed before the group read it
            for batch, trimmed in shard.read_new(self.stop, limit=10 * self.count):
                if trimmed:  # said, never silent
                    self.counts.trimmed_unread += trimmed
                    self.warn(shard.trims.warning(trimmed))
                self.process(shard, batch)
                got += len(batch)
            self.keeper.release(shard)
        return got

    def wait_for_new(self) -> None:
        self.commit_all()  # acknowledge (and fan out) what is done before waiting
        # BLOCK up to --block ms until an XADD to any shard
        for shard, batch in self.waiter.wait(self.block):
            shard.maybe_more = True
            self.process(shard, batch)

    def claim_idle(self) -> int:
        """XAUTOCLAIM: entries idle longer than --claim-idle on any consumer become ours, then processed."""
        claimed = 0
        for shard in self.shards:
            if not shard.sweep.due():
                continue
            for batch, gone in shard.sweep.batches(self.stop):
                if gone:  # Redis 7.0+ dropped pending IDs whose data was trimmed
                    self.counts.trimmed_pending += gone
                    self.warn(f"{gone} pending entries had been trimmed from the stream; dropped from the pending list")
                if batch:
                    claimed += len(batch)
                    self.counts.claimed += len(batch)
                    self.process(shard, batch, self.delivered(shard, batch))
        return claimed

    # -- processing --------------------------------------------------------------------
    def process(self, shard, batch, deliveries: dict[bytes, int] | None = None) -> None:
        """process_message for each entry (the handler, through stream_pubsub/processing.py); what
        succeeded is acknowledged with the shard's next read, and always before this consumer blocks."""
        self.keeper.hold(shard, [entry_id for entry_id, _ in batch])
        shard.processed(*self.processor.handle(shard, batch, deliveries))  # to go with its next XACK
        self.keeper.hold(shard, shard.unacked)  # a failed entry is let go: it is retried after --claim-idle

    def commit_all(self) -> None:
        """XACK (and fan out) everything processed, a MULTI per shard (a lost connection keeps it for later)."""
        for shard in self.shards:
            shard.commit()
            self.keeper.release(shard)

    def drained(self) -> bool:
        self.commit_all()
        return not any(shard.holds_pending() for shard in self.shards)

    def delivered(self, shard, batch) -> dict[bytes, int]:
        return shard.deliveries(batch, len(self.processor.last_error) + len(shard.unacked))

    def group_lag(self) -> int | None:
        return None if None in (lags := [shard.lag() for shard in self.shards]) else sum(lags)

    def warn(self, text: str) -> None:
        click.echo(f"{self.name}: {text}", err=True)


def _start_id(ctx, param, value: str) -> str:
    if value != "$" and not ID.match(value):
        raise click.BadParameter("use $ (only new entries), 0 (the whole history) or an ID like 1700000000000-0")
    return value


@click.command()
@click.argument("group", callback=config.not_empty)
@click.argument("consumer", callback=config.not_empty)
@config.redis_options
@config.shards_option
@click.option("--start-from", default="$", show_default=True, callback=_start_id,
              help="Where a NEW group starts: $ = only entries added from now on, 0 = the whole history, or an ID. "
              "An existing group keeps its position.")  # fmt: skip
@click.option("--block", default=2000, show_default=True, type=click.IntRange(1, 60_000),
              help="How long one read waits for new entries, in milliseconds.")  # fmt: skip
@click.option("--count", default=500, show_default=True, type=click.IntRange(min=1),
              help="Most entries per read (and per XACK).")  # fmt: skip
@click.option("--burst", is_flag=True,
              help="Process what is there (own pending, claimable and new entries), then exit 0. Entries that failed "
              "are retried (after --claim-idle) until processed or dead-lettered before it exits.")  # fmt: skip
@click.option("--claim-idle", default=60_000, show_default=True, type=click.IntRange(min=1),
              envvar=config.CLAIM_IDLE, show_envvar=True,
              help="Claim pending entries idle for longer than this many milliseconds (XAUTOCLAIM).")  # fmt: skip
@click.option("--max-deliveries", default=5, show_default=True, type=click.IntRange(min=1),
              envvar=config.MAX_DELIVERIES, show_envvar=True,
              help="Dead-letter an entry delivered more often than this.")  # fmt: skip
@config.dead_letter_option
@click.option("--handler", envvar=config.HANDLER, show_envvar=True, metavar="MODULE:FUNCTION",
              help="Your own processing: FUNCTION(message_id, message) from MODULE (the current directory or "
              "PYTHONPATH), called once per entry.  [default: check the reading and print it]")  # fmt: skip
@click.option("--fanout", metavar="STREAM",
              help="Add what the handler returns (a dict, or a list of them) to STREAM, in the same transaction as "
              "the XACK: each entry's output exactly once.")  # fmt: skip
@click.option("--fail-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Fail this fraction of readings at random, to watch retries and dead letters.")  # fmt: skip
@click.option("--stats-interval", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between status lines on stderr (0: none).")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; only the summary.")
def main(group, consumer, redis_url, stream, shards, start_from, dlq, handler, fanout, quiet, **settings):
    """Read readings from the stream as CONSUMER of consumer group GROUP.

    Each entry of the stream goes to exactly one consumer of a group, so start several
    (in several terminals) to share the work:

    \b
        python consumer.py group1 c1
        python consumer.py group1 c2
        python consumer.py alerts a1 --handler examples.alerts:process --fanout app:alerts

    On start a consumer first processes its own pending entries (read before, never
    acknowledged), then waits for new ones. Every reading is acknowledged (XACK) only after
    it was processed. A failed one stays pending and is retried; one that is invalid or
    failed more than --max-deliveries times moves to the dead-letter stream. Entries left
    idle by a consumer that died are claimed after --claim-idle.

    Ctrl-C (or SIGTERM) finishes the batch in hand and exits; a second Ctrl-C quits at once.
    """
    process = handlers.load(handler) if handler else handlers.print_readings(quiet=quiet)
    stop, started, me = Stop(), time.monotonic(), None
    connection = Connection(redis_url, read_timeout=settings["block"] / 1000)
    try:
        with connection.errors(key=stream):
            connection.check()
            raw_replies(connection.db)  # entries as they come off the wire (stream_pubsub/replies.py)
            layout = sharding.layout(connection.db, stream, shards, dlq=dlq, fanout=fanout,
                                     cluster=connection.cluster, where=connection.where)  # fmt: skip
            # XGROUP CREATE ... MKSTREAM on each shard, once: an existing group keeps its position
            if any([ensure_group(connection.db, key, group, start_from) for key, _, _ in layout]):
                n = f" ({layout.n} shards)" * (layout.n > 1)
                click.echo(f"created group {group} on {stream}{n}, starting at {start_from}", err=True)
            for key, _, _ in layout:  # an XACK of no entry: a user who may not acknowledge learns it now
                connection.db.xack(key, group, "0-0")
            me = Consumer(connection, layout, group=group, name=consumer, handler=process, stop=stop, **settings)
            me.run()
    except StopNow:
        counts = me.counts.summary() if me else "nothing read"
        click.echo(f"{consumer}: quit at once; unacknowledged entries stay pending ({counts})", err=True)
        sys.exit(130)
    click.echo(f"{consumer}: stopped after {time.monotonic() - started:.1f}s: {me.counts.summary()}", err=True)


if __name__ == "__main__":
    main()
