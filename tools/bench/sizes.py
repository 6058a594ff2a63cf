"""What the benchmark measures with: the stream, the sizes of a full and a quick run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

import config

ROOT = Path(__file__).resolve().parents[2]  # where producer.py and consumer.py are
STREAM = config.DEFAULT_STREAM  # "app:event", the tutorial's key
BLOCK_TIME = 5000  # the tutorial companion's BLOCK, in ms
FASTSTREAM_BATCH = 1000  # FastStream's max_records in batch mode (its default reads everything there is)


@dataclass
class Sizes:
    runs: int = 5  # runs per figure (the median is reported), and pairs per paired ratio
    producer_tutorial: int = 10_000  # readings the tutorial's producer loop sends per run
    producer_bulk: int = 100_000  # readings `producer.py --count N -q` sends per run
    redis_benchmark: int = 200_000  # XADDs per redis-benchmark run
    one_shot_runs: int = 5
    consumer_entries: int = 200_000  # the prefilled backlog every consumer reads (the 200,000)
    consumer_tutorial: int = 10_000  # the tutorial loop reads this many of them (it is slow)
    latency_seconds: float = 3.0
    latency_rate: int = 1_000  # readings per second
    rss_entries: int = 1_000_000
    # the cluster row (cluster.py): the same on the single node and on 3 masters with 12 shards
    cluster_producers: int = 12  # producer.py processes at once, one sensor per shard (--quick: one per master)
    cluster_producer: int = 120_000  # readings per producer run, over all of them (10,000 each)
    cluster_consumer: int = 240_000  # prefilled entries one consumer.py reads per run (20,000 a shard)
    # real handlers (handlers.py): a handler that waits 10 ms, many at once
    handler_threads: int = 10_000  # entries for --concurrency 32 (and --order-by on and off)
    handler_async: int = 20_000  # entries for an async def handler, --concurrency 100


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
    cluster_producers=3,
    cluster_producer=1_500,
    cluster_consumer=2_400,
    handler_threads=320,
    handler_async=1_000,
)


def say(text: str) -> None:
    click.echo(text, err=True)
