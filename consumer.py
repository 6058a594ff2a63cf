"""Read sensor readings through a consumer group, process them, acknowledge them.

The tutorial's consumer, made safe: nothing read is lost when a consumer crashes, fails or Redis goes
away, and nothing is retried forever. The loop is `Consumer.run`; each step it calls is in stream_pubsub/.
"""

from __future__ import annotations

import time

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click
import redis.exceptions as rex

from stream_pubsub import handler as handlers
from stream_pubsub import shards as sharding
from stream_pubsub.blocking_read import blocking_read
from stream_pubsub.connection import Connection, evicted_keys, eviction_risk
from stream_pubsub.consumer_metrics import ConsumerMetrics
from stream_pubsub.group import check_may_acknowledge, create_groups, group_lost, group_streams, sharded_since
from stream_pubsub.keeping import Keeper
from stream_pubsub.presence import Presence
from stream_pubsub.processing import Processor
from stream_pubsub.replies import raw_replies
from stream_pubsub.settings import HANDLER_TIMEOUT_FACTOR, MAX_CONCURRENCY, MAX_COUNT, MIN_CLAIM_IDLE, Settings
from stream_pubsub.status import StatusLine
from stream_pubsub.stopping import Stop, StopNow, leave
from stream_pubsub.telling import say


class Consumer:
    def __init__(self, connection: Connection, layout, settings: Settings, *, handler, stop: Stop, presence, metrics):
        """layout: (stream, dead-letter, fan-out key) per shard; metrics: stream_pubsub/consumer_metrics.py, or None."""
        self.connection, self.db, self.settings, self.stop = connection, connection.db, settings, stop
        self.metrics = metrics
        self.status = StatusLine(settings.name, settings.stats_interval)
        self.counts, fanout = self.status.counts, bool(layout.fanout)
        self.processor = Processor(  # (with --metrics, it times the handler)
            handler, settings, fanout=fanout, counts=self.counts, say=self.warn, stop=stop, metrics=metrics
        )
        self.retries = self.processor.retries  # failures this consumer retries itself (--retry-delays)
        # keeps slow work from being claimed, and lets hung work go (stream_pubsub/keeping.py)
        self.keeper = Keeper(settings, presence=presence, say=self.warn)
        self.presence, stop.busy = presence, self.keeper.busy
        self.evicted = evicted_keys(self.db)  # to tell eviction from FLUSHALL when the group vanishes
        self.use(layout)

    def use(self, layout) -> None:
        """Read these shards (at start, and when the stream is sharded while we run)."""
        self.layout = layout
        self.shards = group_streams(self.connection, layout, self.settings, say=self.warn)
        self.blocking_read = blocking_read(self.connection, self.shards, self.settings)
        if self.metrics:  # its XACKs observed (end-to-end latency), and its counts read at every scrape
            self.metrics.watch(self)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        recover = True  # on start, and after every reconnect
        while not self.stop:
            try:
                if recover:  # a read whose reply was lost still put entries on our pending list
                    self.recover_own_pending()
                    recover = False
                got = self.read_new() + self.claim_idle() + self.retry_due()
                self.status.report_if_due(lag=self.group_lag)
                if got or self.stop:
                    continue
                if self.settings.burst:  # nothing new, nothing claimable: done once nothing of ours is pending
                    if self.drained():
                        break
                    time.sleep(min(0.1, self.retries.until() or 0.1, *(shard.claims.until() for shard in self.shards)))
                else:
                    self.wait_for_new()
            except self.connection.transient as exc:  # Redis went away, or a cluster's slot moved
                self.reconnect(exc)
                recover = True
            except rex.ResponseError as exc:
                if self.connection.moved(exc):  # Redis 7.0 unblocks a reader so when a slot moves
                    self.reconnect(exc)
                    recover = True
                elif group_lost(exc):  # FLUSHALL, DEL or eviction removed the group: XGROUP CREATE ... 0 again
                    self.regroup()
                else:
                    raise
        self.acknowledge_all()
        self.blocking_read.close()

    def recover_own_pending(self) -> None:
        """Process our own pending entries: delivered to this name before, never acknowledged."""
        self.acknowledge_all()
        for shard in self.shards:
            # XREADGROUP with ID 0 instead of `>` re-reads them (it never blocks), oldest first, one
            # at a time, each acknowledged before the next: one of them may be what killed us
            for batch in shard.own_pending(self.stop):
                self.counts.recovered += len(batch)
                self.process(shard, batch, shard.deliveries(batch))
                self.acknowledge(shard)

    def read_new(self) -> int:
        """Read the entries never delivered to anyone (`>`) on each shard that may have some."""
        got = 0
        for shard in self.shards:
            if not shard.maybe_more or self.stop:
                continue
            # XREADGROUP > one read ahead; each half's XACK (with --fanout, the script that adds the
            # outputs) goes with the next read, and the XINFO that count what MAXLEN trimmed unread
            for batch, trimmed in shard.read_new(self.stop, limit=10 * self.settings.read_count):
                if trimmed:  # said, never silent
                    self.counts.trimmed_unread += trimmed
                    self.warn(shard.trims.warning(trimmed))
                self.process(shard, batch)
                got += len(batch)
            self.keeper.release(shard)
        return got

    def wait_for_new(self) -> None:
        """The blocking read: XREADGROUP ... BLOCK --block ms until an XADD to any shard."""
        self.acknowledge_all()  # acknowledge (and fan out) what is done before waiting
        found = self.blocking_read.wait(self.retries.block_ms(self.settings.block_ms))  # (a retry due: until then)
        for shard, batch in found:
            shard.wake()
            self.process(shard, batch)
        if not found and self.layout.n == 1:  # idle: has a producer sharded the stream meanwhile?
            self.follow_shards()

    def claim_idle(self) -> int:
        """Claim (XAUTOCLAIM) entries idle longer than --claim-idle on any consumer, then process them."""
        claimed = 0
        for shard in self.shards:
            if not shard.claims.due():
                continue
            # one at a time, each acknowledged before the next: it was delivered before and not
            # acknowledged, and may be what killed its consumer
            for batch, gone in shard.claims.claim(self.stop):
                if gone:  # Redis 7.0+ dropped pending IDs whose data was trimmed
                    self.counts.trimmed_pending += gone
                    self.warn(f"{gone} pending entries had been trimmed from the stream; dropped from the pending list")
                if batch:
                    claimed += len(batch)
                    self.counts.claimed += len(batch)
                    self.process(shard, batch, shard.deliveries(batch))
                    self.acknowledge(shard)
        return claimed

    def retry_due(self) -> int:
        """--retry-delays: each failed entry whose delay is over, with its sensor's entries held back behind
        it. XCLAIM to ourselves (not JUSTID) reads it again and raises its delivery count, as a redelivery."""
        retried = 0
        for waiting in self.retries.due():
            shard = waiting.shard
            again = shard.claim_again(waiting.entry_id)  # (none: acknowledged or claimed by another meanwhile)
            self.process(shard, again + waiting.held, shard.deliveries(again) if again else None)
            self.acknowledge(shard)
            retried += 1
        return retried

    # -- processing and acknowledging --------------------------------------------------
    def process(self, shard, batch, deliveries: dict[bytes, int] | None = None) -> None:
        """process_message for each entry (the handler, through stream_pubsub/processing.py); what
        succeeded is acknowledged with the shard's next read, and always before this consumer blocks."""
        self.keeper.hold(shard, [entry_id for entry_id, _ in batch], new=True)
        if self.metrics:
            self.metrics.delivered(batch, deliveries)
        shard.processed(*self.processor.handle(shard, batch, deliveries))  # to go with its next XACK
        self.keeper.hold(shard, shard.done)  # a failed entry is let go: it is retried after --claim-idle
        if self.retries:  # ... or, with --retry-delays, kept fresh until we retry it
            self.keeper.waiting(shard, self.retries.ids(shard))
        if self.processor.exit_code is not None:  # the handler exited: stop once this is acknowledged
            self.stop.requested = True

    def acknowledge(self, shard) -> None:
        """XACK what this shard processed (with --fanout, adding the outputs), and wait for Redis's reply."""
        shard.acknowledge()
        self.keeper.release(shard)

    def acknowledge_all(self) -> None:
        for shard in self.shards:
            self.acknowledge(shard)

    # -- the group's upkeep ------------------------------------------------------------
    def reconnect(self, exc: Exception) -> None:
        """One line, back off until it answers, then read again, first what is pending with us."""
        for shard in self.shards:
            shard.lost_connection()
        with self.status.reconnecting():  # /readyz says 503 meanwhile
            self.connection.wait_until_back(self.stop, exc)
        if not self.stop:
            self.presence.take()  # another process may have started under our name meanwhile

    def regroup(self) -> None:  # the group or the whole stream is gone
        evicted, self.evicted = self.evicted, evicted_keys(self.db)
        why = f"Redis evicted {self.evicted - evicted} keys meanwhile" if evicted != self.evicted else None
        for shard in self.shards:
            shard.forget()
            self.retries.forget(shard)
            if shard.recreate():  # XGROUP CREATE ... 0 MKSTREAM (not created: it had only moved)
                self.warn(shard.group_lost_message(why))
        self.layout.record(self.db)  # the number of shards, for the producers, if it went too

    def follow_shards(self) -> None:
        """A producer sharded the stream after we started (a record of N shards): read those."""
        layout = sharded_since(self.connection, self.layout, self.settings.group)
        if layout is not None:
            self.acknowledge_all()
            self.blocking_read.close()
            self.warn(f"{layout.stream} is sharded now ({layout.n} shards, recorded by a producer): reading them all")
            self.use(layout)

    def drained(self) -> bool:
        self.acknowledge_all()
        return not any(shard.holds_pending() for shard in self.shards)

    def group_lag(self) -> int | None:
        return None if None in (lags := [shard.lag() for shard in self.shards]) else sum(lags)

    def warn(self, text: str) -> None:
        say(f"{self.settings.name}: {text}")


@click.command(cls=config.Command)
@click.argument("group", callback=config.not_empty)
@click.argument("consumer", callback=config.not_empty)
@config.redis_options
@config.shards_option
@click.option(
    "--start-from",
    default="$",
    show_default=True,
    callback=config.position,
    help="Where a NEW group starts: $ = only entries added from now on, 0 = the whole history, or an ID. "
    "An existing group keeps its position.",
)
@config.block_option
@click.option(
    "--count",
    default=500,
    show_default=True,
    type=click.IntRange(1, MAX_COUNT),
    help=f"Most entries per read (and per XACK), at most {MAX_COUNT:,}: a crash redelivers at most this many.",
)
@click.option(
    "--burst",
    is_flag=True,
    help="Process what is there (own pending, claimable and new entries), then exit 0. Entries that failed "
    "are retried (after --claim-idle) until processed or dead-lettered before it exits.",
)
@click.option(
    "--claim-idle",
    "claim_idle_ms",
    default=60_000,
    show_default=True,
    type=click.IntRange(min=MIN_CLAIM_IDLE),
    envvar=config.CLAIM_IDLE,
    show_envvar=True,
    help=f"Claim pending entries idle for longer than this many milliseconds (XAUTOCLAIM), at least "
    f"{MIN_CLAIM_IDLE}. Run every consumer of a group with the same value.",
)
@click.option(
    "--handler-timeout",
    "handler_timeout_ms",
    default=None,
    type=click.IntRange(min=MIN_CLAIM_IDLE),
    metavar="MS",
    help="Keep a batch in hand from being claimed for at most this long; a handler that takes longer (hangs) "
    "has its batch let go, for the other consumers to claim.  "
    f"[default: {HANDLER_TIMEOUT_FACTOR} x --claim-idle]",
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
    "--handler",
    envvar=config.HANDLER,
    show_envvar=True,
    metavar="MODULE:FUNCTION",
    help="Your own processing: FUNCTION(message_id, message) from MODULE (the current directory or "
    "PYTHONPATH), called once per entry.  [default: check the reading and print it]",
)
@click.option(
    "--fanout",
    metavar="STREAM",
    callback=config.not_empty,
    help="Add what the handler returns (a dict, or a list of them) to STREAM, in the same step as the XACK: "
    "each entry's outputs exactly once.",
)
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_CONCURRENCY),
    help="Up to N entries in the handler at once: a plain function on N threads, an `async def` one on one "
    f"event loop, N at a time (at most {MAX_CONCURRENCY}). An entry is acknowledged once its handler returned.",
)
@click.option(
    "--order-by",
    default="sensor_id",
    callback=config.utf8,
    show_default=True,
    metavar="FIELD",
    help="Entries with the same value of FIELD (a sensor's readings) never run at once, and run in stream "
    "order; '' for no order.",
)
@click.option(
    "--retry-delays",
    default="",
    callback=config.milliseconds,
    metavar="MS[,MS...]",
    help="Retry a failed entry here, after these delays (the k-th failure waits the k-th; the last repeats), "
    "its sensor's later entries waiting behind it.  [default: none; a failed entry is retried after "
    "--claim-idle by whichever consumer claims it]",
)
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
@config.metrics_option(":9102", "/metrics, /livez (its loop turns) and /readyz (connected, reading its group)")
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; only the summary.")
@click.pass_context
def main(ctx, group, consumer, redis_url, stream, shards, start_from, dlq, handler, fanout, quiet, **options):
    """Read readings from the stream as CONSUMER of consumer group GROUP.

    Each entry of the stream goes to exactly one consumer of a group, so start several
    (in several terminals) to share the work; each needs a name of its own:

    \b
        python consumer.py group1 c1
        python consumer.py group1 c2
        python consumer.py alerts a1 --handler examples.alerts:process --fanout app:alerts

    On start a consumer first processes its own pending entries (read before, never
    acknowledged), then waits for new ones. Every reading is acknowledged (XACK) only after
    it was processed. A failed one stays pending and is retried; one that is invalid or
    failed more than --max-deliveries times moves to the dead-letter stream. Entries left
    idle by a consumer that died are claimed after --claim-idle.

    The summary counts: processed, failed (deliveries that raised; retried), claimed (taken over
    from idle consumers), dead-lettered, trimmed-pending (entries it held whose data MAXLEN/XTRIM
    removed) and trimmed-unread (entries removed before the group read them: lost to trimming).

    Ctrl-C (or SIGTERM) finishes the batch in hand and exits; a second Ctrl-C quits at once.
    """
    address = options.pop("metrics")
    settings = Settings(group=group, name=consumer, **options)  # (every option of the loop, by name)
    # served from a thread from now on; a bad --metrics is one line and exit 2, before Redis is asked
    metrics = ConsumerMetrics.serving(address, settings, stream=stream, url=redis_url)
    process = handlers.load(handler) if handler else handlers.print_readings(quiet=quiet)
    stop, started, me, presence = Stop(), time.monotonic(), None, None
    connection = Connection(redis_url, read_timeout=settings.block_ms / 1000)
    explicit = ctx.get_parameter_source("start_from") != click.core.ParameterSource.DEFAULT
    try:
        with connection.errors(key=stream):
            connection.check()
            raw_replies(connection.db)  # entries as they come off the wire (stream_pubsub/replies.py)
            layout = sharding.layout(connection, stream, shards, dlq=dlq, fanout=fanout)
            if risk := eviction_risk(connection.db, [key for key, _, _ in layout]):
                say(risk)
            # one process per consumer name: two would share (and both process) one pending list
            presence = Presence(connection, layout[0][0], group=group, consumer=consumer)
            if doubt := presence.take():
                say(f"{consumer}: {doubt}")
            # XGROUP CREATE ... MKSTREAM on each shard, once: an existing group keeps its position
            for line in create_groups(connection.db, layout, group, start_from, explicit=explicit):
                say(line)
            check_may_acknowledge(connection.db, layout, group)
            me = Consumer(connection, layout, settings, handler=process, stop=stop, presence=presence, metrics=metrics)
            me.run()
    except StopNow:
        counts = me.counts.summary() if me else "nothing read"
        say(f"{consumer}: quit at once; unacknowledged entries stay pending ({counts})")
        leave(130)
    finally:
        if presence is not None:
            presence.close()
    say(f"{consumer}: stopped after {time.monotonic() - started:.1f}s: {me.counts.summary()}")
    leave(me.processor.exit_code or 0)


if __name__ == "__main__":
    main()
