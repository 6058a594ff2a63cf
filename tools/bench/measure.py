"""The measurements: each runs the contenders in turns and keeps every run's figure."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from stream_pubsub.local_server import LocalServer, free_port
from stream_pubsub.reading import make_reading

from .ours import fill, group_state, run_script, spawn_script
from .peers import faststream_consumer, reads_only_alone, redis_benchmark
from .sizes import STREAM, Sizes, say
from .tutorial import tutorial_consumer, tutorial_producer


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
    Our default path runs between the reads-only ceiling and the same command with --metrics (then
    the do-nothing handler), in an order that flips every round (ceiling, ours, metrics, handler;
    then handler, metrics, ours, ceiling), so each run of ours has its pairs' partners next to it;
    report.py takes the ratios pair by pair.
    """
    n = sizes.consumer_entries
    say(f"consumer: filling the stream with {n:,} readings")
    fill(server.url, client, n)
    with tempfile.TemporaryDirectory(prefix="bench-handler-") as folder:
        (Path(folder) / f"{NOOP_HANDLER.split(':')[0]}.py").write_text(NOOP_SOURCE)
        handler_env = {"PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))}
        contenders = {
            "ceiling": lambda: runs["reads_only_per_s"].append(ceiling_run(server, client, n)),
            "ours": lambda: runs["consumer_wall_s"].append(consumer_run(server, client, "ours", n)),
            # --metrics on a port of its own, served from a thread while it reads (nobody scrapes it)
            "metrics": lambda: runs["metrics_wall_s"].append(
                consumer_run(server, client, "metrics", n, "--metrics", f"127.0.0.1:{free_port()}")
            ),
            "handler": lambda: runs["handler_wall_s"].append(
                consumer_run(server, client, "handler", n, "--handler", NOOP_HANDLER, env=handler_env)
            ),
        }
        for i in range(sizes.runs):
            say(f"consumer, run {i + 1} of {sizes.runs}")
            for name in ("ceiling", "ours", "metrics", "handler")[:: 1 if i % 2 == 0 else -1]:
                contenders[name]()

            # the tutorial ratio's partner, in the same round (it reads fewer entries: it is slow)
            runs["consumer_tutorial_per_s"].append(tutorial_consumer(server.url, "tutorial", sizes.consumer_tutorial))
            client.xgroup_destroy(STREAM, "tutorial")

            # The same command on a group with nothing left to read: start-up, connecting, checks, exit.
            client.xgroup_create(STREAM, "ours", "$")
            runs["consumer_idle_s"].append(run_script(server.url, "consumer.py", *ours_args("ours")))
            client.xgroup_destroy(STREAM, "ours")

            if have_faststream:
                client.xgroup_create(STREAM, "faststream", "0")
                runs["faststream_batch_per_s"].append(faststream_consumer(server.url, "faststream", n, timeout=120))
                client.xgroup_destroy(STREAM, "faststream")
    client.delete(STREAM)
    wall, idle, handler, metrics = (
        median(runs[k]) for k in ("consumer_wall_s", "consumer_idle_s", "handler_wall_s", "metrics_wall_s")
    )
    return {
        "entries": n,
        "tutorial_per_s": median(runs["consumer_tutorial_per_s"]),
        "ours_per_s": n / max(wall - idle, 1e-3),
        "ours_wall_per_s": n / wall,
        "ours_wall_s": wall,
        "ours_startup_s": idle,
        "handler_wall_per_s": n / handler,
        "handler_wall_s": handler,
        "metrics_wall_per_s": n / metrics,
        "metrics_wall_s": metrics,
        "faststream_batch_per_s": median(runs["faststream_batch_per_s"]) if have_faststream else None,
        "reads_only_per_s": median(runs["reads_only_per_s"]),
    }


def ours_args(group: str) -> tuple[str, ...]:
    """The issue's command: the consumer creates its group at 0 itself, so it reads the whole backlog."""
    return (group, "c1", "--start-from", "0", "--burst", "-q")


NOOP_HANDLER = "noop:process"  # a user's handler that does nothing: what the handler interface costs
NOOP_SOURCE = '''"""A --handler that does nothing, written by tools/bench for one run."""


def process(message_id, message):
    return None
'''


def consumer_run(server: LocalServer, client: redis.Redis, group: str, n: int, *extra: str, env=None) -> float:
    """`consumer.py GROUP c1 --start-from 0 --burst -q [extra]` over the whole backlog: its wall time."""
    assert not group_state(client, group), f"group {group} exists before its run"
    wall = run_script(server.url, "consumer.py", *ours_args(group), *extra, env=env)
    state = group_state(client, group)
    assert state["pending"] == 0 and state.get("entries-read", n) == n, f"consumer.py {' '.join(extra)} left {state}"
    client.xgroup_destroy(STREAM, group)
    return wall


def ceiling_run(server: LocalServer, client: redis.Redis, n: int) -> float:
    """The reads-only ceiling over the same backlog, through a group of its own created at 0."""
    client.xgroup_create(STREAM, "reads-only", "0")
    rate = reads_only_alone(server.url, "reads-only", n)
    client.xgroup_destroy(STREAM, "reads-only")
    return rate


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
