"""Step 3: a master SIGKILLed mid-run; its replica takes over; every script says so once, and goes on."""

from __future__ import annotations

import re
import time
from pathlib import Path

from stream_pubsub.local_cluster import NODE_TIMEOUT_MS

from ..stage import StepFailed
from .stage import ClusterDemo, spans

AFTER = re.compile(r"reconnected to \S+ after (\d+\.\d)s")


def address(node) -> str:
    return f"127.0.0.1:{node.port}"


def fail_over(demo: ClusterDemo) -> str:
    """Returns the address of the new master."""
    layout, here = demo.layout(), address(demo.cluster.nodes[0])  # the scripts' REDIS_URL: that one stays
    name = next(node for node in layout if node != here)
    victim = next(node for node in demo.cluster.nodes if address(node) == name)
    with demo.nodes(f"finding the replica of {name}"):
        replica = demo.cluster.replica_of(victim)
    hit = [s for s in demo.sensors if demo.shard_of(s) in layout[name]]
    demo.begin(
        "failover",
        f"the master of shards {spans(layout[name])} ({' and '.join(hit)}) is SIGKILLed mid-run; "
        "its replica takes over",
    )
    everyone = demo.producers() + demo.consumers()
    demo.say(f"$ kill -KILL {victim.process.pid}    # {Path(victim.binary).name} at {name}", indent=2)
    killed = time.monotonic()
    victim.kill()
    demo.wait_until(
        lambda: demo.cluster.role(replica) == "master" and demo.cluster.healthy(),
        f"{address(replica)} did not take over from {name}",
        timeout=20,
    )
    took = time.monotonic() - killed
    demo.say(
        f"# {took:.1f}s later (node timeout {NODE_TIMEOUT_MS} ms): {address(replica)}, its replica, is master "
        f"of shards {spans(layout[name])}; cluster_state:ok on every node",
        indent=2,
    )
    with demo.nodes(f"starting {name} again"), demo.signals.deferred():  # recorded before an interrupt
        victim.start()
    demo.say(
        f"# {name} is started again (with its nodes.conf): it rejoins as a replica of {address(replica)}, "
        "so that --wait-replicas 1 can be met there",
        indent=2,
    )
    demo.wait_until(
        lambda: demo.cluster.role(victim) == "slave" and demo.cluster.healthy(),
        f"{name} did not rejoin as a replica",
        timeout=20,
    )
    demo.relearn()
    # The consumers (they read every shard) and the producers of the dead master's shards lose it;
    # the others find their masters refusing writes (CLUSTERDOWN) until the failover, if they try then.
    must = demo.consumers() + [p for p in demo.producers() if p.name in hit]
    try:
        demo.wait_until(
            lambda: (
                all(demo.said(s, "reconnected to") for s in everyone if s in must or demo.said(s, "lost Redis at"))
                or not all(s.alive() for s in everyone)
            ),
            "not every script that lost Redis reconnected",
            timeout=20,
        )
    except StepFailed as exc:
        late = [
            f"{s.name} ({(s.stderr().strip().splitlines() or ['said nothing'])[-1]})"
            for s in everyone
            if (s in must or demo.said(s, "lost Redis at")) and not demo.said(s, "reconnected to")
        ]
        raise StepFailed(f"{exc}: {'; '.join(late)}")
    demo.check_running(everyone)
    shown = [demo.consumers()[0], next(p for p in demo.producers() if p.name in hit)]
    demo.show(
        "\n".join(
            f"{s.name}: {line}"
            for s in shown
            for line in s.stderr().splitlines()
            if "lost Redis at" in line or "reconnected to" in line
        )
    )
    for s in everyone:
        lost, back = demo.said(s, "lost Redis at"), demo.said(s, "reconnected to")
        if len(back) != len(lost) or len(lost) > 1 or (s in must and not lost):
            raise StepFailed(f'{s.name} said "lost Redis" {len(lost)} times, "reconnected" {len(back)} times')
    noticed = [s for s in everyone if demo.said(s, "lost Redis at")]
    calm = [p.name for p in demo.producers() if p not in noticed]
    since = {s: len(demo.sent_readings([s])) for s in hit}
    demo.wait_until(
        lambda: (
            all(len(demo.sent_readings([s])) >= since[s] + 5 for s in hit)
            and set(demo.sent_readings(hit)) <= set(demo.processed_readings())
        ),
        f"{' and '.join(hit)} did not publish again through the new master",
        timeout=20,
    )
    demo.check_running(everyone)
    with demo.nodes(f"finding the replica of {address(replica)}"):
        roles = (demo.cluster.role(replica), demo.cluster.role(victim), demo.cluster.replica_of(replica) is victim)
    if roles != ("master", "slave", True):
        raise StepFailed(f"{address(replica)} is {roles[0]}, {name} is {roles[1]} (its replica: {roles[2]})")
    delays = sorted(float(AFTER.search(demo.said(s, "reconnected to")[0])[1]) for s in noticed)
    fresh = sum(len(demo.sent_readings([s])) - since[s] for s in hit)
    producers, consumers = len(demo.producers()), len(demo.consumers())
    who = (
        f"the {producers} producers and {consumers} consumers"
        if not calm
        else f"the {consumers} consumers and {producers - len(calm)} of the {producers} producers"
    )
    demo.ok(
        f"{address(replica)} master of shards {spans(layout[name])} {took:.1f}s after the kill, {name} its replica; "
        f'{who} each said "lost Redis" once and "reconnected" once (after {delays[0]:.1f}-{delays[-1]:.1f}s)'
        + (f", {', '.join(calm)} never noticed (no write refused)" if calm else "")
        + f"; none exited; {' and '.join(hit)} publish again through the new master ({fresh} readings since, processed)"
    )
    return address(replica)
