"""Step 2: six producers, two on each master's shards, confirmed by a replica; three consumers share them."""

from __future__ import annotations

import time
from collections import Counter

from ..stage import GROUP, StepFailed
from .stage import CONSUMERS, SHARDS, ClusterDemo

WAIT_TIMEOUT_MS = 3000  # --wait-timeout: room for a restarted replica to catch up after the failover


def pick_sensors(demo: ClusterDemo, per_master: int = 2) -> list[str]:
    """The first sensors (sensor1, sensor2, ...) that fill `per_master` shards of their own on each master."""
    layout = demo.layout()
    master_of = {index: node for node, indexes in layout.items() for index in indexes}
    picked, taken = [], set()
    for n in range(1, 1000):
        sensor, index = f"sensor{n}", demo.shard_of(f"sensor{n}")
        if index not in taken and sum(master_of[i] == master_of[index] for i in taken) < per_master:
            picked.append(sensor)
            taken.add(index)
        if len(picked) == per_master * len(layout):
            return picked
    raise StepFailed("no sensors found that spread over every master")


def producer_args(demo: ClusterDemo) -> list:
    pace = f"--count 0 --interval {demo.pace.interval}"
    return f"--shards {SHARDS} {pace} --wait-replicas 1 --wait-timeout {WAIT_TIMEOUT_MS}".split()


def share(demo: ClusterDemo) -> None:
    demo.sensors = pick_sensors(demo)
    demo.begin(
        "sharing",
        f"c2 and c3 join group {GROUP}; {len(demo.sensors)} producers publish, two sensors to each master's "
        "shards, each reading confirmed by a replica (--wait-replicas 1)",
    )
    joining = [demo.spawn(name, "consumer.py", GROUP, name, "--stats-interval", 0) for name in CONSUMERS[1:]]
    demo.wait_until(
        lambda: (
            all(c.name in demo.consumer_names(i) for c in joining for i in range(SHARDS))
            or not all(c.alive() for c in joining)
        ),
        "c2 and c3 did not join the group on every shard",
        timeout=20,
    )
    demo.check_running(demo.consumers())
    for n, sensor in enumerate(demo.sensors):
        demo.spawn(sensor, "producer.py", sensor, *producer_args(demo), show=n == 0)
    demo.say(f"(and {', '.join(demo.sensors[1:])}, the same way, at the same time)", indent=4)
    started = time.monotonic()
    demo.wait_until(lambda: all(demo.sent_readings([s]) for s in demo.sensors), "not every producer sent", 20)
    time.sleep(demo.pace.run)
    running = demo.producers() + demo.consumers()
    demo.wait_until(
        lambda: all(demo.processed_readings(c) for c in CONSUMERS) or not all(s.alive() for s in running),
        "not every consumer took a share of the readings",
    )
    sent, took = set(demo.sent_readings()), time.monotonic() - started
    demo.wait_until(
        lambda: sent <= set(demo.processed_readings()) or not all(s.alive() for s in running),
        f"the {len(sent)} readings sent were not all processed",
    )
    demo.check_running(running)
    first = demo.producers()[0]
    demo.show(
        "\n".join(
            [f"{first.name}: {first.stdout().splitlines()[0]}"]
            + [f"{c.name}: {c.stdout().splitlines()[0]}" for c in demo.consumers() if c.stdout()]
        )
    )
    times = Counter(demo.processed_readings())
    twice = [r for r, n in times.items() if n > 1]
    by = {c: sum(r in sent for r in demo.processed_readings(c)) for c in CONSUMERS}
    if twice:
        raise StepFailed(f"{len(twice)} readings processed more than once before anything failed, e.g. {twice[0]}")
    if not all(by.values()):
        raise StepFailed(f"not every consumer took a share: {by}")
    where = {s: demo.node_of(demo.shard_of(s)) for s in demo.sensors}
    demo.ok(
        f"{len(sent)} readings sent in {took:.1f}s, each confirmed by a replica, to "
        f"{len(set(map(demo.shard_of, demo.sensors)))} shards on {len(set(where.values()))} masters; "
        + ", ".join(f"{c} processed {n}" for c, n in by.items())
        + ": each reading once so far"
    )
