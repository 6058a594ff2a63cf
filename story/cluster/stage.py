"""The stage of `make demo-cluster`: story/stage.py's Demo, on a Redis Cluster of the demo's own.

The scripts run as a reader runs them, pointed at one node of the cluster (any node will do); the
checks look at the whole cluster through a RedisCluster client, and at the nodes themselves
through the LocalCluster that started them (who is master, who replicates whom).

Entry IDs are per shard: two shards on two masters can give the same ID in the same millisecond.
A reading is therefore (sensor, ID): a sensor's readings all go to the one shard it routes to.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from redis.cluster import RedisCluster

from stream_pubsub import shards
from stream_pubsub.local_cluster import LocalCluster

from ..stage import GROUP, PROCESSED, SENT, Demo, Script, StepFailed

SHARDS = 12
CONSUMERS = ("c1", "c2", "c3")
# The Shards table of `admin.py info`: SHARD KEY NODE LENGTH PENDING LAG DEAD LETTERS
SHARD_ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\S+:\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ClusterPace:
    interval: float  # the producers' --interval
    run: float  # seconds of traffic before each event, and before the tally
    pause: float  # seconds between steps, for a reader to catch up


NORMAL = ClusterPace(interval=0.05, run=2.5, pause=1.5)
FAST = ClusterPace(interval=0.05, run=1.0, pause=0.0)


class ClusterDemo(Demo):
    steps = 5

    def __init__(self, cluster: LocalCluster, stream: str, pace: ClusterPace, folder, signals):
        super().__init__(cluster.url, stream, pace, folder, signals)
        self.r.close()  # the single-node client of Demo: a cluster is looked at as a whole instead
        self.cluster = cluster
        self.r = RedisCluster.from_url(cluster.url, socket_connect_timeout=2, socket_timeout=10)
        self.keys = shards.keys(stream, SHARDS)
        self.sensors: list[str] = []

    @contextmanager
    def nodes(self, doing: str):
        """LocalCluster's own errors (a node that does not start, a slot that does not move) fail the step."""
        try:
            yield
        except RuntimeError as exc:
            raise StepFailed(f"{doing}: {exc}") from None

    def relearn(self) -> None:
        """Learn the slots anew (after a failover or a slot move), from the nodes as they are now."""
        self.r.nodes_manager.initialize()

    # -- where things are ---------------------------------------------------------------------------
    def shard_of(self, sensor: str) -> int:
        return shards.route(sensor, SHARDS)

    def slot_of(self, index: int) -> int:
        return shards.slot(self.keys[index])

    def node_of(self, index: int) -> str:
        """host:port of the master serving shard `index` now, as the masters say (CLUSTER SLOTS)."""
        with self.nodes(f"finding the master of shard {index}"):
            return f"127.0.0.1:{self.cluster.owner(self.slot_of(index)).port}"

    def layout(self) -> dict[str, list[int]]:
        """{master host:port: [its shards]}, in the order of the shards."""
        found: dict[str, list[int]] = {}
        for index in range(SHARDS):
            found.setdefault(self.node_of(index), []).append(index)
        return found

    @staticmethod
    def listed(info_text: str) -> Counter:
        """How many shards `admin.py info` shows on each node."""
        return Counter(node for _, _, node, *_ in SHARD_ROW.findall(info_text))

    # -- the scripts and what they said -------------------------------------------------------------
    def producers(self) -> list[Script]:
        return [s for s in self.scripts if s.name in self.sensors]

    def consumers(self) -> list[Script]:
        return [s for s in self.scripts if s.name in CONSUMERS]

    def sent_readings(self, sensors=None) -> list[tuple[str, str]]:
        """(sensor, ID) of every reading a producer printed as sent."""
        return [
            (p.name, i)
            for p in self.producers()
            if sensors is None or p.name in sensors
            for i in SENT.findall(p.stdout())
        ]

    def processed_readings(self, consumer: str | None = None) -> list[tuple[str, str]]:
        """(sensor, ID) of every reading a consumer printed as processed (twice if it did it twice)."""
        return [
            (sensor, i)
            for c in self.consumers()
            if consumer in (None, c.name)
            for i, sensor in PROCESSED.findall(c.stdout())
        ]

    def said(self, script: Script, text: str) -> list[str]:
        return [line for line in script.stderr().splitlines() if text in line]

    def check_running(self, scripts: list[Script]) -> None:
        """Every one of them still running, with no traceback and no lost group in what it said."""
        for s in scripts:
            err = s.stderr()
            if not s.alive():
                last = (err.strip().splitlines() or ["no output"])[-1]
                raise StepFailed(f"{s.name} exited {s.process.returncode}: {self.masked(last)}")
            for bad in ("Traceback", "GROUP LOST"):
                if bad in err:
                    line = next(line for line in err.splitlines() if bad in line)
                    raise StepFailed(f"{s.name} said {self.masked(line)!r}")

    def group_on(self, index: int) -> dict | None:
        key = self.keys[index]
        groups = self.r.xinfo_groups(key) if self.r.exists(key) else []
        return next((g for g in groups if g["name"].decode() == GROUP), None)

    def consumer_names(self, index: int) -> set[str]:
        """The consumers group demo knows on shard `index` (a consumer shows up at its first read there)."""
        if not self.group_on(index):
            return set()
        return {c["name"].decode() for c in self.r.xinfo_consumers(self.keys[index], GROUP)}

    def drained(self) -> bool:
        """Every shard's group has read everything in it and has nothing pending."""
        for index, key in enumerate(self.keys):
            g = self.group_on(index)
            if not g or g["pending"]:
                return False
            lag = g.get("lag")  # nil when the server cannot tell: count what is after its position
            if lag is None:
                lag = len(self.r.xrange(key, "(" + g["last-delivered-id"].decode(), "+", count=1))
            if lag:
                return False
        return True


def spans(indexes: list[int]) -> str:
    """[0, 1, 2, 3, 8] -> "0-3, 8"."""
    runs: list[list[int]] = []
    for i in sorted(indexes):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def section(info_text: str, title: str) -> str:
    """One section of `admin.py info`'s text (its title line and its rows)."""
    return next((block for block in info_text.split("\n\n") if block.startswith(title)), "")
