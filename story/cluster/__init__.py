"""The scale-out story, as `make demo-cluster` (python demo.py --cluster) tells it, one module a step:

    1. spread.py      the stream as 12 shards, 4 on each of the 3 masters; group demo on every shard
    2. sharing.py     six producers (--shards 12 --wait-replicas 1), three consumers sharing the shards
    3. failover.py    a master SIGKILLed mid-run; its replica takes over; every script reconnects once
    4. resharding.py  a slot with traffic moves to another master under the consumers; nobody notices
    5. tally.py       producers stop, consumers drain: every reading sent processed, duplicates counted

stage.py is story/stage.py's Demo on a cluster of the demo's own (3 masters + 3 replicas on loopback).
"""

from __future__ import annotations

from . import failover, resharding, sharing, spread, tally
from .stage import FAST, NORMAL, ClusterDemo

__all__ = ["FAST", "NORMAL", "ClusterDemo", "tell"]


def tell(demo: ClusterDemo) -> None:
    spread.spread(demo)
    sharing.share(demo)
    new_master = failover.fail_over(demo)
    resharding.move_slot(demo, new_master)
    tally.tally(demo)
