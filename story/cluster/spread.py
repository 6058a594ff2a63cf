"""Step 1: the stream as 12 shards, spread 4 to a master; the group on every shard."""

from __future__ import annotations

from stream_pubsub import shards

from ..stage import GROUP, Script, StepFailed
from .stage import SHARDS, ClusterDemo, section, spans


def spread(demo: ClusterDemo) -> Script:
    demo.begin(
        "shards",
        f"{demo.stream} as {SHARDS} shards over the 3 masters: consumer c1 records the {SHARDS} and "
        f"creates group {GROUP} on every shard",
    )
    c1 = demo.spawn("c1", "consumer.py", GROUP, "c1", "--shards", SHARDS, "--stats-interval", 0)
    demo.wait_until(
        lambda: all(demo.group_on(i) for i in range(SHARDS)) or not c1.alive(),
        f"c1 did not create group {GROUP} on the {SHARDS} shards",
        timeout=20,
    )
    demo.check_running([c1])
    demo.show(c1.stderr().strip())
    info = demo.run("info", "admin.py", "info")
    demo.show(section(info.stdout(), "Shards"), limit=SHARDS + 2)
    recorded = demo.r.get(shards.record_key(demo.stream))
    masters = {f"127.0.0.1:{node.port}" for node in demo.cluster.masters()}
    layout, listed = demo.layout(), demo.listed(info.stdout())
    if recorded != str(SHARDS).encode():
        raise StepFailed(f"{shards.record_key(demo.stream)} holds {recorded!r}, not {SHARDS}")
    if set(layout) != masters or sorted(len(v) for v in layout.values()) != [SHARDS // 3] * 3:
        raise StepFailed(f"the shards are not 4 on each of the 3 masters: {layout}")
    if listed != {node: len(v) for node, v in layout.items()}:
        raise StepFailed(f"`admin.py info` shows the shards on {dict(listed)}, the cluster says {layout}")
    demo.ok(
        f"{shards.record_key(demo.stream)} = {SHARDS}, group {GROUP} on every shard; "
        + ", ".join(f"{node} serves shards {spans(v)}" for node, v in layout.items())
        + f" ({SHARDS // 3} each, as admin.py info shows)"
    )
    return c1
