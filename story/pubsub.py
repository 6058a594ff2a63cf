"""Step 5: plain pub/sub loses what a subscriber missed while offline; the stream kept it."""

from __future__ import annotations

import json
import time

from .stage import GROUP, SENT, Demo, StepFailed


def pubsub(demo: Demo) -> None:
    demo.begin(
        "pub/sub against streams",
        "the same readings over plain pub/sub (PUBLISH) while the subscriber is offline: lost; the stream kept them",
    )
    channel = demo.stream
    subscriber = demo.r.pubsub(ignore_subscribe_messages=True)
    try:
        subscriber.subscribe(channel)
        demo.wait_until(lambda: demo.r.pubsub_numsub(channel)[0][1] >= 1, "the subscriber did not subscribe")
        demo.r.publish(channel, "hello")
        demo.wait_until(lambda: subscriber.get_message(timeout=0.1), "the listening subscriber got nothing")
        demo.say(f"SUBSCRIBE {channel}    # a subscriber listens: PUBLISH {channel} hello reaches it", indent=2)
    finally:
        subscriber.close()
    demo.say(f"# the subscriber goes offline, and so does group {GROUP} (c1 exited)", indent=2)
    produced = demo.run("sensor3", "producer.py", "sensor3", "--count", 20)
    ids = SENT.findall(produced.stdout())
    receivers = 0
    for entry_id in ids:
        ((_, fields),) = demo.r.xrange(demo.stream, entry_id, entry_id)
        receivers += demo.r.publish(channel, json.dumps({k.decode(): v.decode() for k, v in fields.items()}))
    demo.say(f"PUBLISH {channel} <each of the 20 readings>    # reached {receivers} subscribers", indent=2)
    subscriber = demo.r.pubsub(ignore_subscribe_messages=True)
    try:
        subscriber.subscribe(channel)
        got, deadline = 0, time.monotonic() + demo.pace.listen
        while time.monotonic() < deadline:
            got += subscriber.get_message(timeout=0.05) is not None
    finally:
        subscriber.close()
    demo.say(f"SUBSCRIBE {channel}    # the subscriber is back: it got {got} of 20", indent=2)
    back = demo.run("c1", "consumer.py", GROUP, "c1", "--burst", "--stats-interval", 0)
    demo.show(back.stderr().strip().splitlines()[-1])
    kept = [i.decode() for i, _ in demo.r.xrange(demo.stream, ids[0] if ids else "-")]
    if got or receivers:
        raise StepFailed(f"the offline subscriber got {got} of 20 ({receivers} received when published)")
    if len(ids) != 20 or kept != ids or not set(ids) <= set(demo.processed_by("c1")) or not demo.caught_up():
        raise StepFailed(f"the stream kept {len(kept)} of the 20 readings, or c1 did not process them")
    demo.ok(
        "pub/sub: subscriber received 0 of 20 after reconnecting; stream: holds all 20, "
        "and c1 processed 20 of 20 when it came back"
    )
