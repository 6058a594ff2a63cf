"""consumer.py --metrics ADDRESS: what the consumer knows of its own work, for Prometheus.

    /metrics   entries by outcome, handler time, end-to-end latency, deliveries, reconnects,
               when its loop last turned and when it last acknowledged, the server it reads
    /livez     200 while its loop turns; 503 once it has not, for longer than the bound it states
    /readyz    200 while connected and reading its group; 503 while Redis is away, or before then

Nothing of this runs per entry without --metrics. The counts are the consumer's own (Counts, in
stream_pubsub/status.py), read at each scrape. What only --metrics measures is measured where
it costs least:

    handler time        timed only with --metrics (HandlerTiming): two clock readings and an
                        append per call, folded into the histogram a batch at a time; a fast
                        handler's calls are timed one batch in 8
    end-to-end latency  from each entry's ID (the milliseconds at which Redis added it) to the
                        moment its XACK goes out (GroupStream.send calls `acknowledging`): the
                        definition `make bench` uses (tools/bench/measure.py)
    deliveries          per batch (Consumer.process): 1 for each new entry (read with `>`), the
                        delivery count XPENDING gave for a claimed or re-read one

The histograms are filled a batch at a time (stream_pubsub/own_metrics.py).
"""

from __future__ import annotations

import threading
import time
from functools import wraps

from . import metric_names as names
from .connection import SOCKET_TIMEOUT
from .masking import where
from .own_metrics import Histogram, bind, counter, gauge, histograms, info, serve, server_info
from .running import is_async

# How long the loop may go without turning while no handler runs: a blocking read waits --block,
# and each command it sends may wait up to the socket timeout before it fails (then it reconnects).
LOOP_MARGIN = 2 * SOCKET_TIMEOUT


FAST, SAMPLE = 20e-6, 8  # a handler whose calls take under 20 µs: one batch in 8 timed (see HandlerTiming)


class ConsumerMetrics:
    """The collector of one consumer's metrics, and its /livez and /readyz. Serving starts at once;
    the numbers come once `watch` is given the consumer (its group exists then)."""

    @classmethod
    def serving(cls, address: str | None, settings, *, stream: str, url: str) -> ConsumerMetrics | None:
        """Bound to --metrics ADDRESS and serving (None without --metrics); a bad address is a
        UsageError (one line, exit 2), raised before Redis is asked anything."""
        server = bind(address)
        return None if server is None else cls(server, settings, stream=stream, where=where(url))

    def __init__(self, server, settings, *, stream: str, where: str):
        self.settings, self.where = settings, where
        self.labels = {"stream": stream, "group": settings.group, "consumer": settings.name}
        self.consumer = None
        self.server: dict[str, str] | None = None  # INFO server: what it runs against
        self.bound = settings.block_ms / 1000 + LOOP_MARGIN
        self.handler_times: list[float] = []  # seconds per handler call, not in the histogram yet
        self.untimed = [0, 0.0]  # calls of a fast handler not timed since the last fold, and their time each
        self.folding = threading.Lock()
        self.handler_seconds = Histogram(names.HANDLER_SECONDS.buckets)
        self.deliveries = Histogram(names.DELIVERIES.buckets)
        self.latency: dict[str, tuple[dict, Histogram]] = {}  # shard key -> (its labels, end-to-end latency)
        self.fanout_added = 0
        self.last_ack: float | None = None  # Unix time
        self.took_batch = 0.0  # when it last took a batch in hand (monotonic): the loop moves within a turn too
        serve(server, self, {"/livez": self.livez, "/readyz": self.readyz})

    # -- what the consumer calls ----------------------------------------------------------------
    def timing(self, handler) -> HandlerTiming:
        """The handler's time per call, for the histogram (see HandlerTiming)."""
        return HandlerTiming(handler, self)

    def watch(self, consumer) -> None:
        """Count what the consumer does (its group exists now), and observe each XACK of its shards:
        called as it starts, and when the stream is sharded while it runs."""
        if self.server is None:
            self.server = server_info(consumer.db)
        self.consumer, shards = consumer, consumer.shards
        for index, shard in enumerate(shards):
            if shard.key not in self.latency:
                labels = {**self.labels, "shard": str(index)} if len(shards) > 1 else self.labels
                self.latency[shard.key] = (labels, Histogram(names.END_TO_END_SECONDS.buckets))
            shard.acknowledging = self.acknowledging

    def acknowledging(self, shard, done: list[bytes], outputs: dict) -> None:
        """These entries' XACK goes out now: the time since each was added, by its ID."""
        now = time.time()
        self.last_ack = now
        self.latency[shard.key][1].observe_ids(done, now * 1000)
        if outputs:
            self.fanout_added += sum(map(len, outputs.values()))
        self.fold_handler_times()

    def delivered(self, batch, deliveries: dict[bytes, int] | None) -> None:
        """How often each entry of a batch about to be processed was delivered (not those that are
        dead-lettered for it, nor those whose data was trimmed: they are not processed)."""
        self.took_batch = time.monotonic()  # (re-reading a long pending list one at a time is one turn)
        if deliveries is None:  # read with `>`: delivered now, for the first time
            self.deliveries.observe(1, len(batch))
            return
        limit = self.settings.max_deliveries
        for entry_id, fields in batch:
            if fields and (times := deliveries.get(entry_id, 1)) <= limit:
                self.deliveries.observe(times)

    def fold_handler_times(self) -> None:
        times, untimed = self.handler_times, self.untimed
        with self.folding:  # (a scrape may fold at the same time)
            n = len(times)
            taken = times[:n]
            del times[:n]  # a time appended meanwhile stays for the next fold
            skipped, untimed[0] = untimed[0], 0  # (the calls a fast handler made untimed: at its mean time)
        if taken:
            self.handler_seconds.observe_many(taken)
        if skipped:
            self.handler_seconds.observe(untimed[1], skipped)

    # -- /livez and /readyz ---------------------------------------------------------------------
    def liveness(self) -> tuple[bool, str]:
        """Is the loop turning? While a batch is in the handler's hands (the Keeper's, stream_pubsub/
        keeping.py), it may take --handler-timeout, after which the Keeper lets it go as hung;
        otherwise the loop must turn (or take a batch) within --block + LOOP_MARGIN. Waiting for Redis
        is alive."""
        now, consumer = time.monotonic(), self.consumer
        if consumer is None:
            return True, "live: starting (connecting to Redis, creating the group)"
        if (since := consumer.status.reconnecting_since) is not None:
            return True, f"live: waiting for Redis at {self.where} to come back, for {now - since:.1f}s"
        if busy := consumer.keeper.busy():
            limit = self.settings.handler_timeout
            said = f"the batch in hand has been in the handler's hands for {busy:.1f}s (bound: --handler-timeout "
            return busy <= limit, ("live: " if busy <= limit else "not live: ") + f"{said}{limit * 1000:.0f} ms)"
        quiet = now - max(consumer.status.turned, self.took_batch)
        said = f"its loop turned {quiet:.1f}s ago (bound: --block {self.settings.block_ms} ms + {LOOP_MARGIN:.0f} s)"
        return quiet <= self.bound, ("live: " if quiet <= self.bound else "not live: ") + said

    def readiness(self) -> tuple[bool, str]:
        who = f"{self.labels['consumer']} of group {self.labels['group']} on {self.labels['stream']}"
        if self.consumer is None:
            return False, f"not ready: starting ({who}: connecting to Redis, creating the group)"
        if self.consumer.stop:
            return False, f"not ready: stopping ({who})"
        if (since := self.consumer.status.reconnecting_since) is not None:
            return False, f"not ready: Redis at {self.where} is away, reconnecting for {time.monotonic() - since:.1f}s"
        return True, f"ready: {who}, reading"

    def livez(self) -> tuple[str, str]:
        return _http(*self.liveness())

    def readyz(self) -> tuple[str, str]:
        return _http(*self.readiness())

    # -- a scrape -------------------------------------------------------------------------------
    def collect(self):
        """The families of metric_names.CONSUMER_SIDE, read now (prometheus_client calls it at each scrape)."""
        me = self.labels
        if self.consumer is not None:
            yield from self.counted(me)
        yield gauge(names.LIVE, me, float(self.liveness()[0]))
        yield gauge(names.READY, me, float(self.readiness()[0]))
        if self.server is not None:
            yield info(names.SERVER_INFO, self.server)

    def counted(self, me: dict):
        from prometheus_client.metrics_core import CounterMetricFamily

        counts, status = self.consumer.counts, self.consumer.status
        entries = CounterMetricFamily(
            names.CONSUMER_ENTRIES.family, names.CONSUMER_ENTRIES.help, labels=[*me, "outcome"]
        )
        for outcome, value in zip(
            names.OUTCOMES,
            (
                counts.processed,
                counts.failed,
                counts.dead_lettered,
                counts.claimed,
                counts.recovered,
                counts.trimmed_unread + counts.trimmed_pending,  # gone before it could process them
                self.fanout_added,
            ),
            strict=True,
        ):
            entries.add_metric([*me.values(), outcome], value)
        yield entries
        self.fold_handler_times()
        yield histograms(names.HANDLER_SECONDS, [(me, self.handler_seconds)])
        yield histograms(names.END_TO_END_SECONDS, list(self.latency.values()))
        yield histograms(names.DELIVERIES, [(me, self.deliveries)])
        yield counter(names.CONSUMER_RECONNECTS, me, counts.reconnects)
        yield gauge(names.LAST_LOOP, me, time.time() - (time.monotonic() - status.turned))
        if self.last_ack is not None:
            yield gauge(names.LAST_ACK, me, self.last_ack)


class HandlerTiming:
    """The handler's seconds per call, for the histogram; what it raises goes on as it was.

    `timed` is the handler, each call timed: what the handler runs as with --concurrency, or an
    `async def` (it stays one, so that it runs on the event loop). The one-at-a-time loop
    (stream_pubsub/processing.py) asks `for_batch` which to call for each batch: a fast handler
    (every call of a timed batch under FAST) is timed one batch in SAMPLE, and the calls of the
    batches between are counted at the mean time of the last timed batch: a call through a wrapper
    and two clock readings cost such a handler a tenth of its speed (`make bench`, --metrics).
    """

    def __init__(self, handler, metrics: ConsumerMetrics):
        self.handler, self.metrics = handler, metrics
        self.skip = 0  # batches still to run untimed
        self.batch = [0, 0.0, 0.0]  # the timed batch's calls, their seconds in all, the slowest call's
        took, clock, batch = metrics.handler_times.append, time.perf_counter, self.batch
        if is_async(handler):

            @wraps(handler)
            async def timed_coroutine(message_id, message):
                started = clock()
                try:
                    return await handler(message_id, message)
                finally:
                    took(clock() - started)

            self.timed = timed_coroutine
            return

        @wraps(handler)
        def timed_handler(message_id, message):
            started = clock()
            try:
                return handler(message_id, message)
            finally:
                seconds = clock() - started
                took(seconds)
                batch[0] += 1
                batch[1] += seconds
                if seconds > batch[2]:
                    batch[2] = seconds

        self.timed = timed_handler

    def for_batch(self):
        """The handler to call for each entry of the next batch: timed, or not (a fast handler's)."""
        if self.skip:
            self.skip -= 1
            return self.handler
        self.batch[:] = 0, 0.0, 0.0
        return self.timed

    def batch_done(self, used, calls: int) -> None:
        """After a batch whose entries `used` (from for_batch) was called for, `calls` times."""
        calls_timed, seconds, slowest = self.batch
        untimed = self.metrics.untimed
        if used is self.timed:
            if calls_timed and slowest < FAST:  # fast: the next SAMPLE - 1 batches untimed, at this mean
                self.skip = SAMPLE - 1
                with self.metrics.folding:
                    untimed[1] = seconds / calls_timed
            return
        with self.metrics.folding:  # (a scrape folds them into the histogram meanwhile)
            untimed[0] += calls


def _http(ok: bool, text: str) -> tuple[str, str]:
    return ("200 OK" if ok else "503 Service Unavailable"), text + "\n"
