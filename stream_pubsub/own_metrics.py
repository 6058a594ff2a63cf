"""What the consumer and the producer measure of themselves for --metrics ADDRESS, and serving it.

Counts the scripts keep anyway (the consumer's stream_pubsub/status.py Counts, the publisher's
`sent`) are read when Prometheus scrapes, by a prometheus_client custom collector: counting them
costs nothing more. The histograms are kept here, not in prometheus_client's Histogram, which
takes a lock and searches its buckets at every observation: at 200,000 entries a second a
consumer has about 5 µs per entry in all. These are filled a batch at a time: one sort, then one
bisection per bucket. The names, labels and buckets are stream_pubsub/metric_names.py's.

prometheus_client is imported only by a process that serves metrics (see metric_names.py).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from itertools import accumulate
from operator import mul

import redis.exceptions as rex

from .telling import UsageError


class Histogram:
    """Cumulative bucket counts, their sum and their count, as Prometheus wants them.

    Filled by the script's own thread, read by the scrape's: both under the lock, so a scrape
    never sees a bucket counted and the count not yet.
    """

    def __init__(self, bounds):
        self.bounds = tuple(bounds)
        self.cumulative = [0] * len(self.bounds)  # observations <= each bound
        self.count, self.sum = 0, 0.0
        self.lock = threading.Lock()

    def observe_many(self, values: list[float]) -> None:
        """Add these values, in any order."""
        if values and max(values) <= self.bounds[0]:  # all in the first bucket (a fast handler): no sort
            with self.lock:
                self.cumulative = [n + len(values) for n in self.cumulative]
                self.count += len(values)
                self.sum += sum(values)
            return
        self.observe_sorted(sorted(values))

    def observe_sorted(self, values: list[float]) -> None:
        """Add these values, sorted ascending."""
        with self.lock:
            for i, bound in enumerate(self.bounds):
                self.cumulative[i] += bisect_right(values, bound)
            self.count += len(values)
            self.sum += sum(values)

    def observe(self, value: float, times: int = 1) -> None:
        """Add one value, `times` times (a pipelined batch's round trip, for each reading in it)."""
        with self.lock:
            for i, bound in enumerate(self.bounds):
                if value <= bound:
                    self.cumulative[i] += times
            self.count += times
            self.sum += value * times

    def observe_ages(self, ms: list[int], now_ms: float, counts: list[int] | None = None) -> None:
        """Add the seconds from each of these times (milliseconds, sorted ascending; each `counts`
        times, or once) to `now_ms`.

        An age is at most a bound b exactly when its time is at least now - b: one bisection per
        bucket, no subtraction per entry. (An entry ID's milliseconds are the server's clock; one
        a little ahead of this machine's counts as an age of 0 or less.)
        """
        before = range(len(ms) + 1) if counts is None else list(accumulate(counts, initial=0))  # how many before i
        n, total = before[-1], sum(ms) if counts is None else sum(map(mul, ms, counts))
        with self.lock:
            for i, bound in enumerate(self.bounds):
                self.cumulative[i] += n - before[bisect_left(ms, now_ms - bound * 1000)]
            self.count += n
            self.sum += (n * now_ms - total) / 1000

    def observe_ids(self, ids: list[bytes], now_ms: float) -> None:
        """Add the age of each entry ID (b"<milliseconds>-<sequence>") at `now_ms`, in seconds.

        A backlog read at speed holds many entries per millisecond: then the IDs are counted a
        millisecond at a time (sorted, one bisection per millisecond), not parsed one by one.
        """
        ids = sorted(ids)
        first, last = ids[0].partition(b"-")[0], ids[-1].partition(b"-")[0]
        n, width = len(ids), len(first)
        if len(last) == width and 4 * (int(last) - int(first) + 1) <= n:
            ms, counts, i = [], [], 0
            while i < n:
                head = ids[i][: width + 1]
                if head[-1:] != b"-":  # a shorter or longer ID sorted in between: parse them all
                    break
                j = bisect_right(ids, head + b"\xff", i)  # every ID of this millisecond
                ms.append(int(head[:-1]))
                counts.append(j - i)
                i = j
            else:
                return self.observe_ages(ms, now_ms, counts)
        # each ID is <milliseconds>-<sequence>: joined by "-", every other part is milliseconds
        self.observe_ages(sorted(map(int, b"-".join(ids).split(b"-")[::2])), now_ms)

    def read(self) -> tuple[list[int], int, float]:
        """(cumulative bucket counts, count, sum), at one moment."""
        with self.lock:
            return list(self.cumulative), self.count, self.sum


def histograms(spec, observed: list[tuple[dict, Histogram]]):
    """A family of histograms of `spec`, one per (labels, Histogram); their labels may differ (a
    stream sharded while the consumer runs: the latency of the single key, then of each shard)."""
    from prometheus_client.metrics_core import Metric
    from prometheus_client.utils import floatToGoString

    family = Metric(spec.family, spec.help, "histogram")
    for labels, histogram in observed:
        cumulative, count, total = histogram.read()
        for bound, n in zip(histogram.bounds, cumulative):
            family.add_sample(f"{spec.name}_bucket", {**labels, "le": floatToGoString(bound)}, n)
        family.add_sample(f"{spec.name}_bucket", {**labels, "le": "+Inf"}, count)
        family.add_sample(f"{spec.name}_count", labels, count)
        family.add_sample(f"{spec.name}_sum", labels, total)
    return family


def gauge(spec, labels: dict[str, str], value: float):
    from prometheus_client.metrics_core import GaugeMetricFamily

    family = GaugeMetricFamily(spec.family, spec.help, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(spec, labels: dict[str, str], value: float):
    from prometheus_client.metrics_core import CounterMetricFamily

    family = CounterMetricFamily(spec.family, spec.help, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def info(spec, values: dict[str, str]):
    from prometheus_client.metrics_core import InfoMetricFamily

    family = InfoMetricFamily(spec.family, spec.help)
    family.add_metric([], values)
    return family


def server_info(db) -> dict[str, str]:
    """What the script runs against, from INFO server: {"server": "redis" or "valkey", "version": ...}.

    Valkey names itself (`server_name:valkey`, `valkey_version`; its `redis_version` is the Redis
    it is compatible with). A user who may not run INFO gets "unknown".
    """
    try:
        found = db.info("server")
    except (rex.ResponseError, rex.RedisClusterException):
        return {"server": "unknown", "version": "unknown"}
    if found and all(isinstance(value, dict) for value in found.values()):  # a cluster: one INFO per node
        found = next(iter(found.values()))
    name = str(found.get("server_name") or "redis")
    return {"server": name, "version": str(found.get(f"{name}_version") or found.get("redis_version") or "unknown")}


def bind(address: str | None):
    """The HTTP server of --metrics ADDRESS, bound (not serving yet): the first thing a script does,
    so an address that is malformed or taken is one line and exit 2, before Redis is asked."""
    if address is None:
        return None
    from .metrics_http import AddressError, listen  # (http.server: imported only by a script that serves)

    try:
        return listen(address, "--metrics")
    except AddressError as exc:
        raise UsageError(str(exc)) from None


def serve(server, collector, routes: dict) -> None:
    """Serve /metrics (the collector's metrics, and the process's own: CPU, memory, open files) and
    `routes` (path -> function returning (HTTP status, text)) from a daemon thread, until the
    script exits. prometheus_client is imported at the first scrape, in that thread: a --burst
    run nobody scrapes never pays for it."""
    from .metrics_http import serve as serving

    def registry():
        from prometheus_client import CollectorRegistry, ProcessCollector

        registry = CollectorRegistry()
        registry.register(collector)
        ProcessCollector(registry=registry)
        return registry

    serving(server, registry, routes)
