"""Real handlers: `consumer.py --concurrency N` with a handler that waits 10 ms, against what Python
itself does with the same function, each timed as a whole process (start to exit), in turns.

  threads   examples/slow.py's `process` (time.sleep(0.01)), --concurrency 32, over `threads` entries,
            against a bare `ThreadPoolExecutor(32).map` of the same function over the same count
  async     its `wait` (await asyncio.sleep(0.01)), --concurrency 100, over `async_` entries, against
            a bare asyncio loop running it 100 at a time
  order     --order-by sensor_id (the default) against --order-by '' with the thread handler, the
            entries spread over 1,000 sensors

Each ratio is the median of per-pair ratios of rates (entries / wall seconds).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from .ours import run_script
from .sizes import ROOT, STREAM, say

SENSORS = 1_000
THREADED = ("--handler", "examples.slow:process", "--concurrency", "32")

BARE_THREADS = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from examples.slow import process
n = int(sys.argv[1])
with ThreadPoolExecutor(32) as pool:
    list(pool.map(process, [str(i) for i in range(n)], [{}] * n))
"""

BARE_ASYNC = """
import asyncio, sys
from examples.slow import wait
n = int(sys.argv[1])
async def main():
    slots = asyncio.Semaphore(100)
    async def one(i):
        async with slots:
            await wait(str(i), {})
    await asyncio.gather(*(one(i) for i in range(n)))
asyncio.run(main())
"""


def bare(source: str, n: int) -> float:
    """The wall time of a Python process running the bare loop over n calls."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", source, str(n)], cwd=ROOT, check=True, timeout=300)
    return time.perf_counter() - started


def fill(client, n: int) -> None:
    """n readings over SENSORS sensors, in the stream the consumer reads (emptied first)."""
    client.delete(STREAM)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(STREAM, {"sensor_id": f"sensor{i % SENSORS}", "temp": "0.5", "humidity": "0.5"})
        if i % 5_000 == 4_999:
            pipe.execute()
    pipe.execute()


def consumer(server, group: str, n: int, *args: str) -> float:
    return run_script(server.url, "consumer.py", group, "c1", "--start-from", "0", "--burst", "-q", *args, timeout=300)


def measure_handlers(server, client, sizes, runs_seen) -> dict:
    """The three comparisons, in turns, `sizes.runs` pairs each."""
    threads, async_ = sizes.handler_threads, sizes.handler_async
    say(f"handlers: {threads:,} entries at 10 ms, --concurrency 32, against a bare thread pool")
    fill(client, threads)
    pairs = {"threads": [], "order": [], "async": []}
    for run in range(sizes.runs):
        ours = consumer(server, f"t{run}", threads, *THREADED)
        unordered = consumer(server, f"u{run}", threads, *THREADED, "--order-by", "")
        pool = bare(BARE_THREADS, threads)
        runs_seen["handler_threads_wall_s"].append(ours)
        runs_seen["handler_unordered_wall_s"].append(unordered)
        runs_seen["bare_threads_wall_s"].append(pool)
        pairs["threads"].append(pool / ours)  # (rates: n / wall, the same n on both sides)
        pairs["order"].append(unordered / ours)
    say(f"handlers: {async_:,} entries, async def at 10 ms, --concurrency 100, against a bare asyncio loop")
    fill(client, async_)
    for run in range(sizes.runs):
        ours = consumer(server, f"a{run}", async_, "--handler", "examples.slow:wait", "--concurrency", "100")
        loop = bare(BARE_ASYNC, async_)
        runs_seen["handler_async_wall_s"].append(ours)
        runs_seen["bare_async_wall_s"].append(loop)
        pairs["async"].append(loop / ours)
    client.delete(STREAM)
    median = {name: statistics.median(values) for name, values in pairs.items()}
    return {
        "threads_entries": threads,
        "async_entries": async_,
        "threads_per_s": threads / statistics.median(runs_seen["handler_threads_wall_s"]),
        "bare_threads_per_s": threads / statistics.median(runs_seen["bare_threads_wall_s"]),
        "unordered_per_s": threads / statistics.median(runs_seen["handler_unordered_wall_s"]),
        "async_per_s": async_ / statistics.median(runs_seen["handler_async_wall_s"]),
        "bare_async_per_s": async_ / statistics.median(runs_seen["bare_async_wall_s"]),
        "threads_vs_bare": median["threads"],
        "async_vs_bare": median["async"],
        "ordered_vs_unordered": median["order"],
        "pairs": pairs,
    }
