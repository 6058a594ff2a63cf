"""The cluster row: producer.py and consumer.py on 3 masters with 12 shards, next to the single node.

Every server of the run (the bench's single node and the cluster's 3 masters) and every client
share this machine's cores, so the cluster cannot be faster here: what is measured is what
sharding costs (a cluster client, routing, 12 streams and 12 groups where the single node has
one), as the ratio cluster / single node of runs made next to each other. The per-master figure
(cluster / 3) is what one master did here, the figure a user multiplies by the number of machines.

  producer  the same readings on both sides, sent by the same number of `producer.py SENSOR
            --count N -q` processes at once, with `--shards 12` on the cluster; readings / wall
            time from starting the first process to the last one exiting
  consumer  one `consumer.py GROUP c1 --start-from 0 --burst -q` (as a user runs it: the cluster's
            12 shards are recorded in Redis, so it needs no --shards) over the same number of
            prefilled entries, wall clock from start to exit; afterwards the group has read every
            entry of every shard and holds none pending

Concurrency: one producer.py sends one sensor's readings, so to one shard and one master; a single
process per side would load one master of three and leave the other two idle, which measures a
cluster client talking to one node, not sharding. So several run at once, one sensor per shard
(12; --quick: 3, one per master), and the same number on the single node, so that the ratio is
the cost of sharding and not of parallelism. One consumer reads all the shards of its group.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections import Counter
from contextlib import ExitStack
from functools import partial
from itertools import count

import redis
from redis.cluster import RedisCluster

from stream_pubsub import shards as sharding
from stream_pubsub.connection import Connection
from stream_pubsub.local_cluster import LocalCluster
from stream_pubsub.local_server import LocalServer
from stream_pubsub.publishing import Publisher
from stream_pubsub.reading import make_reading

from .measure import consumer_run, ours_args
from .ours import group_state, run_script, spawn_script
from .sizes import STREAM, Sizes, say

MASTERS = 3
SHARDS = 12
GROUP = "cluster-bench"
# The runs kept under "runs": wall times, the same readings on both sides of a pair.
RUNS = (
    "cluster_single_producer_wall_s",
    "cluster_producer_wall_s",
    "cluster_single_consumer_wall_s",
    "cluster_consumer_wall_s",
)


def measure_cluster(binary: str, server: LocalServer, client: redis.Redis, sizes: Sizes, runs: dict, skipped: dict):
    """The cluster's figures next to the single node's (`server`), or None for each with a reason in `skipped`."""
    producers = sizes.cluster_producers
    if SHARDS % producers or producers % MASTERS:
        raise ValueError(f"{producers} producers do not spread evenly over {SHARDS} shards on {MASTERS} masters")
    sensors = one_sensor_per_shard(SHARDS)
    senders = sensors[:: SHARDS // producers]  # shards 0, 1, ..., 11 (or 0, 4, 8: one on each master)
    each, entries = sizes.cluster_producer // producers, sizes.cluster_consumer // SHARDS * SHARDS
    figures = {
        "masters": MASTERS,
        "replicas": 0,
        "shards": SHARDS,
        "producers": producers,
        "producers_per_master": producers // MASTERS,
        "producer_readings": each * producers,
        "consumers": 1,
        "consumer_entries": entries,
        **dict.fromkeys(("single_producer_wall_s", "single_producer_per_s", "producer_wall_s", "producer_per_s")),
        "producer_per_master_per_s": None,
        **dict.fromkeys(("single_consumer_wall_s", "single_consumer_per_s", "consumer_wall_s", "consumer_per_s")),
        "consumer_per_master_per_s": None,
    }
    with ExitStack() as stack:
        # No replicas: a replica makes its master send it every write, work the single node does
        # not do, so the ratio would count replication along with sharding.
        cluster = stack.push(LocalCluster(binary, masters=MASTERS, replicas=0))  # stopped and removed at the end
        say(f"cluster: forming {MASTERS} masters (no replicas)")
        try:
            cluster.start()
        except (RuntimeError, OSError, redis.RedisError) as exc:
            skipped["cluster"] = f"could not form a cluster of {MASTERS} masters on loopback: {exc}"
            return figures
        rc = stack.enter_context(RedisCluster.from_url(cluster.url))
        keys = sharding.keys(STREAM, SHARDS)
        spread = Counter(rc.get_node_from_key(keys[sharding.route(s, SHARDS)]).name for s in senders)
        if len(spread) != MASTERS or len(set(spread.values())) != 1:
            raise RuntimeError(f"the producers' shards are not spread evenly over the masters: {dict(spread)}")
        n, senders_keys = each * producers, {keys[sharding.route(s, SHARDS)] for s in senders}
        sides = {
            "single": Side(server.url, client, [STREAM], (), used={STREAM}, runs="cluster_single_producer_wall_s"),
            "cluster": Side(cluster.url, rc, keys, ("--shards", str(SHARDS)), senders_keys, "cluster_producer_wall_s"),
        }
        for i in range(sizes.runs):
            say(f"cluster: producer, run {i + 1} of {sizes.runs}: {producers} x {each:,} readings on each side")
            for side in (sides[name] for name in in_turn(i)):
                side.clear()
                runs[side.runs].append(producers_wall(side.url, senders, each, *side.shards_args))
                side.check_stored(n)
        say(f"cluster: filling the single node's stream and the cluster's {SHARDS} shards with {entries:,} readings")
        for name, side in sides.items():
            side.clear()
            fill(side.url, sensors, entries // SHARDS, SHARDS if name == "cluster" else 1)
        for i in range(sizes.runs):
            say(f"cluster: consumer, run {i + 1} of {sizes.runs}: single node and cluster")
            for name in in_turn(i):
                if name == "single":
                    runs["cluster_single_consumer_wall_s"].append(consumer_run(server, client, GROUP, entries))
                else:
                    runs["cluster_consumer_wall_s"].append(cluster_consumer_run(cluster.url, rc, keys, entries))
        for side in sides.values():
            side.clear()
    for what, total in (("producer", n), ("consumer", entries)):
        single, ours = (statistics.median(runs[f"cluster_{k}{what}_wall_s"]) for k in ("single_", ""))
        figures[f"single_{what}_wall_s"], figures[f"single_{what}_per_s"] = single, total / single
        figures[f"{what}_wall_s"], figures[f"{what}_per_s"] = ours, total / ours
        figures[f"{what}_per_master_per_s"] = total / ours / MASTERS  # what one master did here
    return figures


def in_turn(i: int) -> tuple[str, str]:
    """The two sides of pair i, the first one first in every other pair: neither always runs on a warmer machine."""
    return ("single", "cluster") if i % 2 == 0 else ("cluster", "single")


def one_sensor_per_shard(shards: int) -> list[str]:
    """Sensor names, the i-th of which producer.py sends to shard i (shards.route)."""
    found: dict[int, str] = {}
    for k in count(1):
        found.setdefault(sharding.route(f"sensor{k}", shards), f"sensor{k}")
        if len(found) == shards:
            return [found[i] for i in range(shards)]
    raise AssertionError("unreachable")


class Side:
    """One side of a pair: where it is, a client on it, its stream keys, the --shards its producers get,
    the keys its producers send to, and where the runs of its producers are kept."""

    def __init__(self, url: str, db, keys: list[str], shards_args: tuple[str, ...], used: set[str], runs: str):
        self.url, self.db, self.keys, self.shards_args, self.used, self.runs = url, db, keys, shards_args, used, runs

    def clear(self) -> None:
        for key in self.keys:  # one by one: on the cluster every shard is in a slot of its own
            self.db.delete(key)

    def check_stored(self, n: int) -> None:
        """Every reading sent is stored, each producer's readings in its own shard."""
        lengths = {key: self.db.xlen(key) for key in self.keys}
        assert sum(lengths.values()) == n, f"{sum(lengths.values())} of {n} readings stored at {self.url}"
        assert {key for key, length in lengths.items() if length} == self.used, f"readings in shards {lengths}"


def producers_wall(url: str, sensors: list[str], each: int, *extra: str) -> float:
    """`producer.py SENSOR --count EACH -q [extra]`, every sensor at once: from starting the first to the last exit."""
    procs = []
    try:
        started = time.perf_counter()
        for sensor in sensors:
            args = ("producer.py", sensor, "--count", str(each), "-q", *extra)
            procs.append(spawn_script(url, *args, stderr=subprocess.PIPE))
        errors = [p.communicate(timeout=300)[1] for p in procs]
        wall = time.perf_counter() - started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, error in zip(procs, errors):
        if p.returncode != 0:
            raise RuntimeError(f"producer.py {' '.join(extra)} exited {p.returncode}: {error.decode()[-500:]}")
    return wall


class _NeverStopped:
    """The Stop a Publisher checks between batches, never set: the fill is not to be interrupted but by Ctrl-C."""

    def __bool__(self) -> bool:
        return False

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def fill(url: str, sensors: list[str], each: int, shards: int) -> None:
    """`each` readings of every sensor, in its shard: producer.py's bulk path, in this process (it is not
    timed, so no process start-up to wait for), the number of shards recorded as producer.py records it."""
    connection = Connection(url)
    connection.check()
    n = sharding.resolve(connection.db, STREAM, shards, where=connection.where)
    for sensor in sensors:
        key = sharding.keys(STREAM, n)[sharding.route(sensor, n)]
        publisher = Publisher(connection, stream=key, maxlen=None, exact=False, quiet=True, stop=_NeverStopped())
        publisher.send_many(partial(make_reading, sensor), each)
        assert publisher.sent == each, f"{publisher.sent} of {each} readings stored in {key}"
    connection.db.close()


def cluster_consumer_run(url: str, rc: RedisCluster, keys: list[str], n: int) -> float:
    """`consumer.py GROUP c1 --start-from 0 --burst -q` on the cluster: its wall time, start to exit.

    Then XINFO GROUPS on every shard: the group read all of each shard's entries, none is pending.
    """
    assert not any(group_state(rc, GROUP, key) for key in keys), f"group {GROUP} exists before its run"
    wall = run_script(url, "consumer.py", *ours_args(GROUP))
    read = 0
    for key in keys:
        state, length = group_state(rc, GROUP, key), rc.xlen(key)
        assert state and state["pending"] == 0, f"consumer.py left {state} on {key}"
        assert state.get("entries-read", length) == length, f"consumer.py read {state} of {length} entries of {key}"
        read += state.get("entries-read", length)
        rc.xgroup_destroy(key, GROUP)
    assert read == n, f"consumer.py read {read} of {n} entries on the cluster"
    return wall
