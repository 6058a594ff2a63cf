"""`admin.py metrics`: what the server knows about the streams, for Prometheus.

Printed once (for a cron job, or node_exporter's textfile collector), or served on /metrics with
--serve ADDRESS and read afresh from Redis at every scrape. It never writes to Redis. The
readings are in scrape.py, the names in stream_pubsub/metric_names.py; prometheus_client (its
own exposition format) is imported only here, and only when the command runs.

admin.py declares the command and its options (--stream may be given more than once, or as a
pattern) and prints what read_once returns.
"""

from __future__ import annotations

import threading

import redis.exceptions as rex

from .. import metric_names as names
from ..connection import connect
from ..stopping import Interrupt
from ..telling import UsageError, UserError, say
from . import scrape

# What `admin.py metrics --help` says (admin.py declares the command and its options).
HELP = """The streams' groups, consumers, pending entries and dead letters as Prometheus metrics.

\b
    python admin.py metrics
    python admin.py metrics --serve :9103 --stream 'app:*'

Without --serve it prints the metrics once and exits (a cron job can write them where
node_exporter's textfile collector reads them). With --serve it answers Prometheus's
scrapes until Ctrl-C, reading Redis afresh each time. It never writes to Redis.
Where redis_exporter has the same data (--check-streams) the names and labels are its
own (redis_stream_*); the rest is stream_pubsub_*. Every shard of a sharded stream is
read from its own node, with a `shard` label.
"""


def read_once(redis_url: str, streams: list[str], *, dlq: str | None) -> str:
    """The metrics of the streams now, in Prometheus's text format (printed once)."""
    check(streams, dlq)
    exporter = Exporter(connect(redis_url), streams, dlq)
    samples = exporter.read_or_exit()
    from prometheus_client import generate_latest

    return generate_latest(Exported(samples)).decode()


def serve(redis_url: str, streams: list[str], *, dlq: str | None, address: str) -> None:
    """Answer Prometheus's scrapes on `address`/metrics until Ctrl-C, reading Redis at each one."""
    check(streams, dlq)
    from ..metrics_http import AddressError, listen

    try:
        server = listen(address, "--serve")  # before anything else: a port that is taken is said first
    except AddressError as exc:
        raise UsageError(str(exc)) from None
    exporter = Exporter(connect(redis_url), streams, dlq)
    exporter.read_or_exit()  # a key that is not a stream: one line now, not at every scrape
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(exporter)
    serve_until_stopped(server, registry, f"{', '.join(streams)} from Redis at {exporter.connection.where}", address)


def check(streams: list[str], dlq: str | None) -> None:
    if dlq and (len(streams) > 1 or scrape.WILDCARD.search(streams[0])):
        raise UsageError("--dead-letter names the dead-letter stream of one --stream; leave it out for several")


def serve_until_stopped(server, registry, what: str, address: str) -> None:
    from .. import metrics_http

    metrics_http.serve(server, lambda: registry)
    say(f"serving the metrics of {what} on {address}/metrics (read at every scrape); Ctrl-C to stop")
    interrupt = Interrupt()
    try:
        with interrupt.waiting():
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class Exporter:
    """A prometheus_client collector: every collect() reads Redis afresh (one scrape at a time).

    When Redis cannot be read, the scrape still answers, with redis_up 0, and says why on stderr
    once (and once more when it reads again), as redis_exporter does.
    """

    def __init__(self, connection, streams: list[str], dlq: str | None):
        self.connection, self.streams, self.dlq = connection, streams, dlq
        self.lock, self.trouble = threading.Lock(), None

    def read(self) -> list[scrape.Sample]:
        return scrape.read(self.connection, scrape.covered(self.connection, self.streams, self.dlq))

    def read_or_exit(self) -> list[scrape.Sample]:
        with self.connection.errors():
            return self.read()

    def collect(self):
        with self.lock:
            try:
                samples, up = self.read(), 1
                if self.trouble:
                    say(f"reading Redis at {self.connection.where} again")
                self.trouble = None
            except (rex.RedisError, rex.RedisClusterException, UserError) as exc:
                samples, up = [], 0
                self.say(exc)
        yield from families(samples + [scrape.Sample(names.REDIS_UP, {}, up)])

    def say(self, exc: Exception) -> None:
        """Why this scrape has no data, on stderr, once until it changes."""
        line = str(exc) if isinstance(exc, UserError) else self.connection.describe(exc)
        if line != self.trouble:
            say(f"{line}; answering redis_up 0 until it can be read")
        self.trouble = line
        if self.connection.cluster and isinstance(exc, self.connection.transient):
            try:  # a failover: learn the new masters before the next scrape
                self.connection.db.nodes_manager.initialize()
            except self.connection.transient:
                pass


class Exported:
    """The samples read once, as a collector (admin.py metrics without --serve)."""

    def __init__(self, samples: list[scrape.Sample]):
        self.samples = samples + [scrape.Sample(names.REDIS_UP, {}, 1)]

    def collect(self):
        return families(self.samples)


def families(samples: list[scrape.Sample]) -> list:
    """prometheus_client metric families, in the order of metric_names.SERVER_SIDE.

    A family's samples carry their own labels: a `shard` label only where the stream is a shard,
    so an unsharded stream's series are exactly redis_exporter's.
    """
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

    found: dict[str, Metric] = {}
    for sample in samples:
        spec = sample.metric
        if spec.name not in found:
            found[spec.name] = Metric(spec.family, spec.help, spec.kind)
        found[spec.name].samples.append(Sample(spec.name, sample.labels, float(sample.value)))
    order = {spec.name: i for i, spec in enumerate(names.SERVER_SIDE)}
    return sorted(found.values(), key=lambda family: order[family.samples[0].name])
