"""The peers: FastStream's consumer, redis-benchmark's XADD ceiling, and reading alone (no processing)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import redis

from stream_pubsub.reading import make_reading

from .sizes import FASTSTREAM_BATCH, STREAM


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


def reads_only(client: redis.Redis, group: str) -> float:
    """A reference, not a consumer: XREADGROUP COUNT 500 with NOACK until the group has read everything.

    No processing, no XACK: what reading alone costs in Python (redis-py with hiredis).
    """
    done, started = 0, time.perf_counter()
    while reply := client.xreadgroup(group, "c1", {STREAM: ">"}, count=500, noack=True):
        done += len(reply[0][1])
    return done / (time.perf_counter() - started)
