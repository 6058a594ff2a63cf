"""Step 3: a poison reading ends in the dead-letter stream, with its reason, acknowledged."""

from __future__ import annotations

from .stage import SENT, Demo, Script, StepFailed


def poison(demo: Demo, c1: Script) -> None:
    demo.begin("dead letters", f"a poison reading (temp=hot) arrives; c1 moves it to the dead-letter stream {demo.dlq}")
    poison = demo.run("poison", "producer.py", "sensor3", "--field", "temp=hot")
    (poison_id,) = SENT.findall(poison.stdout())
    demo.sent.remove(poison_id)  # a reading no consumer can process: it is not counted as one
    demo.show(poison.stdout())
    demo.wait_until(
        lambda: demo.r.exists(demo.dlq) and demo.caught_up(),
        "the poison reading did not reach the dead-letter stream",
    )
    demo.show("\n".join(line for line in c1.stderr().splitlines() if poison_id in line))
    listed = demo.run("dlq", "admin.py", "dlq", "list")
    demo.show(listed.stdout())
    ((_, fields),) = demo.r.xrange(demo.dlq)
    reason = fields.get(b"dlq.error", b"").decode()
    if fields.get(b"dlq.id", b"").decode() != poison_id or "temp is not a number" not in reason:
        raise StepFailed(f"the dead letter is not the poison reading with its reason: {fields!r}")
    if poison_id not in listed.stdout() or "not a number" not in listed.stdout():
        raise StepFailed("`admin.py dlq list` did not show the poison reading and its reason")
    demo.ok(f"{poison_id} is in {demo.dlq} with its reason ({reason}); acknowledged, not stuck")
