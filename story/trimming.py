"""Step 4: MAXLEN caps the stream while the consumer keeps up; `admin.py trim --safe` keeps what it has not read."""

from __future__ import annotations

import signal

from .stage import GROUP, SENT, Demo, Script, StepFailed


def trim(demo: Demo, c1: Script) -> None:
    demo.begin(
        "MAXLEN and trim",
        "the producer caps the stream at MAXLEN 100 while c1 keeps up; "
        "then, with c1 stopped, `admin.py trim --safe` keeps what c1 has not read",
    )
    capped = demo.run(
        "sensor1",
        "producer.py",
        "sensor1",
        "--count",
        150,
        "--maxlen",
        100,
        "--exact",
        "--interval",
        demo.pace.interval / 10,
    )
    demo.wait_until(demo.caught_up, "c1 did not process the 150 readings")
    length, ids = demo.r.xlen(demo.stream), SENT.findall(capped.stdout())
    if length != 100:
        raise StepFailed(f"the stream holds {length} entries, not 100, after MAXLEN 100")
    if len(ids) != 150 or not set(ids) <= set(demo.processed_by("c1")) or "trimmed from" in c1.stderr():
        raise StepFailed("c1 did not process all 150 readings before MAXLEN trimmed them")
    demo.ok("the stream holds 100 entries (MAXLEN = 100); c1 processed all 150 before any was trimmed")
    demo.say("$ kill -INT <c1>    # Ctrl-C: c1 acknowledges its batch and stops", indent=2)
    code = demo.stop(c1, signal.SIGINT)
    demo.show(c1.stderr().strip().splitlines()[-1])
    if code != 0:
        raise StepFailed(f"c1 exited {code} on Ctrl-C, not 0")
    unread_ids = SENT.findall(demo.run("sensor2", "producer.py", "sensor2", "--count", 20).stdout())
    trimmed = demo.run("trim", "admin.py", "trim", "--maxlen", 10, "--safe")
    demo.show(trimmed.stdout())
    left = [i.decode() for i, _ in demo.r.xrange(demo.stream)]
    if len(left) != 20 or left != unread_ids or "kept 10 entries" not in trimmed.stdout():
        raise StepFailed(f"`admin.py trim --maxlen 10 --safe` left {len(left)} entries, not the 20 unread")
    back = demo.run("c1", "consumer.py", GROUP, "c1", "--burst", "--stats-interval", 0)
    demo.show(back.stderr().strip().splitlines()[-1])
    if "processed 20," not in back.stderr() or not demo.caught_up():
        raise StepFailed("c1 did not process the 20 readings the safe trim kept")
    demo.ok("trim removed only what group demo had read and acknowledged; c1 came back and processed the other 20")
