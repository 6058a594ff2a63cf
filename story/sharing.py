"""Step 1: three producers publish; two consumers of one group share the readings, each once."""

from __future__ import annotations

from .stage import GROUP, SENT, Demo, Script, StepFailed


def share(demo: Demo) -> tuple[Script, Script]:
    demo.begin(
        "sharing",
        f"three producers (sensor1..3) publish 30 readings; consumers c1 and c2 of group {GROUP} share them",
    )
    claim = f"--claim-idle {demo.pace.claim_idle}"
    c1 = demo.spawn("c1", "consumer.py", GROUP, "c1", *claim.split(), "--stats-interval", 0)
    c2 = demo.spawn("c2", "consumer.py", GROUP, "c2", "--stats-interval", 0)
    # The group starts at `$` (only new entries): produce only once both consumers are in it.
    demo.wait_until(
        lambda: (
            demo.r.exists(demo.stream) and {"c1", "c2"} <= set(demo.pending_of()) or not (c1.alive() and c2.alive())
        ),
        "c1 and c2 did not join the group",
    )
    for c in (c1, c2):
        if not c.alive():
            raise StepFailed(f"{c.name} exited at start: {demo.masked(c.stderr().strip())}")
    producers = [
        demo.spawn(
            f"sensor{n}", "producer.py", f"sensor{n}", "--count", 10, "--interval", demo.pace.interval, show=n == 1
        )
        for n in (1, 2, 3)
    ]
    demo.say("(and sensor2, sensor3 at the same time)", indent=4)
    for p in producers:
        if p.process.wait(30) != 0:
            raise StepFailed(f"producer {p.name} failed: {demo.masked(p.stderr().strip())}")
        demo.sent += SENT.findall(p.stdout())
    demo.wait_until(demo.caught_up, "the group did not process all 30 readings")
    demo.show(
        producers[0].stdout().splitlines()[0]
        + "\n"
        + "\n".join(f"{c.name}: {c.stdout().splitlines()[0]}" for c in (c1, c2) if c.stdout())
    )
    by = {c.name: demo.processed_by(c.name) for c in (c1, c2)}
    both = by["c1"] + by["c2"]
    if len(demo.sent) != 30 or sorted(both) != sorted(demo.sent):
        raise StepFailed(
            f"{len(demo.sent)} readings sent, {len(both)} processed "
            f"({len(set(demo.sent) - set(both))} missing, {len(both) - len(set(both))} twice)"
        )
    if not by["c1"] or not by["c2"]:
        raise StepFailed(f"one consumer did all the work (c1 {len(by['c1'])}, c2 {len(by['c2'])})")
    demo.ok(
        f"30 readings sent; c1 processed {len(by['c1'])} and c2 {len(by['c2'])}, each reading once; nothing pending"
    )
    return c1, c2
