"""Step 4: a slot with traffic moves to another master under the consumers; nobody notices."""

from __future__ import annotations

import time

from ..stage import GROUP, StepFailed
from .failover import address
from .stage import ClusterDemo


def position(group: dict) -> tuple[int, int]:
    ms, seq = group["last-delivered-id"].decode().split("-")
    return int(ms), int(seq)


def move_slot(demo: ClusterDemo, new_master: str) -> None:
    layout, here = demo.layout(), address(demo.cluster.nodes[0])
    source_name = next(node for node in layout if node not in (here, new_master))
    sensor = next(s for s in demo.sensors if demo.shard_of(s) in layout[source_name])
    index = demo.shard_of(sensor)
    slot, key = demo.slot_of(index), demo.keys[index]
    target = next(node for node in demo.cluster.nodes if address(node) == here)
    demo.begin(
        "resharding",
        f"slot {slot} (shard {index}, {sensor}'s) moves from {source_name} to {here} while the consumers "
        "wait on it and read from it",
    )
    demo.say("# as `redis-cli --cluster reshard` does it:", indent=2)
    demo.say(
        f"CLUSTER SETSLOT {slot} IMPORTING <{source_name}'s ID>    # on {here}\n"
        f"CLUSTER SETSLOT {slot} MIGRATING <{here}'s ID>    # on {source_name}\n"
        f'MIGRATE 127.0.0.1 {target.port} "" 0 5000 KEYS {key}    # on {source_name}: the shard and its group\n'
        f"CLUSTER SETSLOT {slot} NODE <{here}'s ID>    # on every master",
        indent=2,
    )
    everyone = demo.producers() + demo.consumers()
    said = {s.name: s.stderr() for s in everyone}
    before = demo.group_on(index)
    since = len(demo.sent_readings([sensor]))
    started = time.monotonic()
    with demo.nodes(f"moving slot {slot}"):
        demo.cluster.migrate_slot(slot, target)
    took = time.monotonic() - started
    demo.relearn()
    demo.wait_until(
        lambda: (
            len(demo.sent_readings([sensor])) >= since + 10
            and set(demo.sent_readings([sensor])) <= set(demo.processed_readings())
        ),
        f"{sensor} did not publish on, or its readings were not processed, after the move",
        timeout=20,
    )
    time.sleep(demo.pace.run / 2)
    demo.check_running(everyone)
    talked = [f"{s.name}: {s.stderr()[len(said[s.name]) :].strip()}" for s in everyone if s.stderr() != said[s.name]]
    if talked:
        raise StepFailed(f"the move did not go unnoticed: {demo.masked(talked[0])}")
    now, after = demo.node_of(index), demo.group_on(index)
    if now != here or not after:
        raise StepFailed(f"slot {slot} is served by {now} (group {GROUP} there: {bool(after)})")
    if position(before) > position(after):
        raise StepFailed(f"group {GROUP} on {key} went back from {before['last-delivered-id']} after the move")
    demo.ok(
        f"slot {slot} served by {here} after {took * 1000:.0f} ms; group {GROUP} moved with the shard "
        f"({after['consumers']} consumers, last delivered {after['last-delivered-id'].decode()}); {sensor} published "
        f"{len(demo.sent_readings([sensor])) - since} readings since, all processed; "
        "no script said anything (no GROUP LOST, no lost Redis)"
    )
