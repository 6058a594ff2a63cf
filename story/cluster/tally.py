"""Step 5: the producers stop, the consumers drain every shard and stop: the tally, and `admin.py info`."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

from ..stage import GROUP, StepFailed
from .stage import CONSUMERS, SHARDS, ClusterDemo, spans

LENGTH = re.compile(r"^\s+length\s+(\d+) entries", re.MULTILINE)
GROUP_ROW = re.compile(rf"^\s+{GROUP}\s+(\d+)\s+(\d+)\s+\S+\s+(\d+)\s*$", re.MULTILINE)  # CONSUMERS PENDING .. LAG


def last_line(script) -> str:
    return (script.stderr().strip().splitlines() or ["(nothing)"])[-1]


def stop_all(demo: ClusterDemo, scripts) -> dict[str, int]:
    """SIGTERM to all of them at once (one signal each: a second one means "quit at once"), then their exit codes."""
    for s in scripts:
        if s.alive():
            s.process.terminate()
    try:
        return {s.name: s.process.wait(10) for s in scripts}
    except subprocess.TimeoutExpired:
        raise StepFailed(f"not all of {', '.join(s.name for s in scripts)} stopped within 10s of SIGTERM")


def tally(demo: ClusterDemo) -> None:
    demo.begin(
        "tally",
        f"the tally: the producers stop, the consumers drain all {SHARDS} shards and stop; "
        "was every reading sent processed, is anything pending, how many came twice",
    )
    producers, consumers = demo.producers(), demo.consumers()
    demo.say(
        "$ kill -TERM <each producer>    # as Ctrl-C in its terminal: it stops after the reading in hand", indent=2
    )
    codes = stop_all(demo, producers)
    demo.show("\n".join(f"{p.name}: {last_line(p)}" for p in producers))
    demo.wait_until(demo.drained, f"the consumers did not drain the {SHARDS} shards", timeout=30)
    demo.say(f"$ kill -TERM {' '.join(f'<{c}>' for c in CONSUMERS)}    # each acknowledges its batch, exits", indent=2)
    codes |= stop_all(demo, consumers)
    demo.show("\n".join(last_line(c) for c in consumers))
    if any(codes.values()):
        raise StepFailed(f"not every script exited 0: {codes}")
    info = demo.run("info", "admin.py", "info")
    demo.show(info.stdout(), limit=40)
    sent, processed = demo.sent_readings(), demo.processed_readings()
    times = Counter(processed)
    lost = set(sent) - set(times)
    twice = sum(n - 1 for n in times.values())
    unsent = set(times) - set(sent)  # stored and processed, never printed as sent: an XADD retried
    stored = sum(demo.r.xlen(key) for key in demo.keys)
    pending = sum(demo.group_on(i)["pending"] for i in range(SHARDS))
    length, groups = LENGTH.search(info.stdout()), GROUP_ROW.findall(info.stdout())
    if lost or pending or not demo.drained() or stored != len(times):
        raise StepFailed(
            f"{len(lost)} of {len(sent)} readings sent were never processed; {pending} pending; "
            f"{stored} entries stored, {len(times)} processed"
        )
    if not length or int(length[1]) != stored or groups != [(str(len(CONSUMERS)), "0", "0")]:
        raise StepFailed(f"`admin.py info` does not show {stored} entries and group {GROUP} with 0 pending, lag 0")
    if "Warnings\n  none" not in info.stdout():
        raise StepFailed("`admin.py info` has warnings")
    layout = demo.layout()
    if demo.listed(info.stdout()) != {node: len(v) for node, v in layout.items()}:
        raise StepFailed(f"`admin.py info` does not show the shards where the cluster has them: {layout}")
    demo.ok(
        f"{len(sent)} readings sent, every one processed ("
        + ", ".join(f"{c} {len(demo.processed_readings(c))}" for c in CONSUMERS)
        + f"): lost 0; 0 pending and lag 0 on all {SHARDS} shards; {stored} entries stored"
    )
    demo.ok(
        f"duplicates the failover caused: {twice} reading{'s' * (twice != 1)} processed twice"
        + (" (an XACK or a delivery the dead master had not passed on: at-least-once)" if twice else "")
        + f", {len(unsent)} stored but not confirmed (their WAIT was cut off by the failover: not printed as sent)"
    )
    demo.ok(
        "the shards now: "
        + ", ".join(f"{len(v)} on {node} ({spans(v)})" for node, v in layout.items())
        + ", as admin.py info shows"
    )
