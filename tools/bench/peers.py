"""The peers: FastStream's consumer, redis-benchmark's XADD ceiling, and reading alone (no processing)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import redis

from stream_pubsub.reading import make_reading

from .sizes import FASTSTREAM_BATCH, ROOT, STREAM


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


def reads_only(client: redis.Redis, group: str, n: int) -> float:
    """The ceiling, not a consumer: XREADGROUP COUNT 500 with NOACK until the group has read all n entries.

    No processing, no XACK, redis-py's usual replies (a dict per entry, hiredis parsing): what
    reading alone costs in one Python process. Timed from the first read to the empty reply.
    """
    done, started = 0, time.perf_counter()
    while reply := client.xreadgroup(group, "c1", {STREAM: ">"}, count=500, noack=True):
        done += len(reply[0][1])
    elapsed = time.perf_counter() - started
    assert done == n, f"reads-only read {done} of {n} entries"
    return done / elapsed


# reads_only, in a process that imports redis-py and little else; prints its rate
ALONE = """
import sys
import redis
from tools.bench.peers import reads_only
client = redis.Redis.from_url(sys.argv[1])
client.ping()  # connected before the clock starts
sys.stdout.write(f"{reads_only(client, sys.argv[2], int(sys.argv[3]))}\\n")
"""


def reads_only_alone(url: str, group: str, n: int) -> float:
    """The ceiling measured in a Python process of its own, timed inside it (its start-up not counted).

    Not in the bench's process: redis-py's per-entry dicts set off the garbage collector's full
    passes, whose cost grows with everything else the process holds; with FastStream and walrus
    imported they cost about 15% more at 200,000 entries, so the ceiling would move with what the
    bench happens to import (and whether FastStream is installed).
    """
    done = subprocess.run(
        [sys.executable, "-c", ALONE, url, group, str(n)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"reads-only exited {done.returncode}: {done.stderr[-500:]}")
    return float(done.stdout)
