"""Step 2: a consumer dies mid-batch holding readings; `admin.py pending` shows them; the other claims them."""

from __future__ import annotations

import signal
import time

from .stage import GROUP, Demo, Script, StepFailed


def claim(demo: Demo, c1: Script, c2: Script) -> None:
    demo.begin(
        "claiming",
        "c2 comes back with a fault (every reading fails) and is killed mid-batch (SIGKILL); c1 claims what it held",
    )
    demo.stop(c2)
    restarted = time.monotonic()
    c2 = demo.spawn("c2", "consumer.py", GROUP, "c2", "--fail-rate", 1, "--stats-interval", 0)
    demo.wait_until(lambda: demo.consumers_seen_since("c2", restarted) or not c2.alive(), "c2 did not come back")
    before = len(demo.processed_by("c1"))
    demo.run("sensor2", "producer.py", "sensor2", "--count", 20, "--interval", demo.pace.interval / 2)
    demo.wait_until(
        lambda: demo.group()["last-delivered-id"] == demo.r.xinfo_stream(demo.stream)["last-generated-id"],
        "the 20 readings were not all delivered",
    )
    held = demo.pending_of().get("c2", 0)
    if not held:
        raise StepFailed("c2 took none of the 20 readings, so it had nothing to lose")
    held_ids = [
        p["message_id"].decode() for p in demo.r.xpending_range(demo.stream, GROUP, "-", "+", 100, consumername="c2")
    ]
    # c2 failed these less than a second ago; c1 claims only entries idle for --claim-idle, so
    # `admin.py pending` still finds them with c2, the way a reader would after a crash.
    demo.say(f"$ kill -KILL {c2.process.pid}    # c2 dies holding {held} unacknowledged readings", indent=2)
    demo.stop(c2, signal.SIGKILL)
    killed = time.monotonic()
    pending = demo.run("pending", "admin.py", "pending", GROUP)
    demo.show(pending.stdout())
    if f"(c2 {held})" not in pending.stdout() or not all(i in pending.stdout() for i in held_ids):
        raise StepFailed(f"`admin.py pending {GROUP}` did not list c2's {held} pending entries")
    demo.wait_until(
        lambda: set(held_ids) <= set(demo.processed_by("c1")) and demo.caught_up(),
        f"c1 did not claim and process c2's {held} entries",
        timeout=demo.pace.claim_idle / 500 + 10,
    )
    demo.ok(
        f"c1 claimed c2's {held} readings {time.monotonic() - killed:.1f}s after the kill "
        f"(--claim-idle {demo.pace.claim_idle}) and processed them, with its own "
        f"{len(demo.processed_by('c1')) - before - held}; nothing pending"
    )
