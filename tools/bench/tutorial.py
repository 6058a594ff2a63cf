"""The tutorial's loops, as the blog post writes them: one XADD, or one read and one XACK, per message."""

from __future__ import annotations

import random
import time

from stream_pubsub.reading import check_reading
from stream_pubsub.replies import decode

from .sizes import BLOCK_TIME, STREAM


def tutorial_producer(url: str, n: int) -> float:
    """The tutorial's producer, looped: one `stream.add` (one XADD, one round trip) per reading."""
    from walrus import Database

    rdb = Database.from_url(url)  # the tutorial: Database(), i.e. localhost:6379
    stream = rdb.Stream(STREAM)
    started = time.perf_counter()
    for _ in range(n):
        # The tutorial then prints f"message {msg_id} sent"; left out here, as `producer.py -q`
        # prints nothing per reading either.
        stream.add({"sensor_id": "sensor1", "temp": random.random(), "humidity": random.random()})
    return n / (time.perf_counter() - started)


def tutorial_consumer(url: str, group_id: str, n: int) -> float:
    """The tutorial's consumer loop: read one message per round trip, acknowledge each with its own XACK.

    Processing is the same check consumer.py makes (check_reading), so only the loop differs.
    """
    from walrus import Database

    rdb = Database.from_url(url)
    cg = rdb.consumer_group(group_id, [STREAM], consumer="c1")
    cg.create()  # a list of keys: a new group starts at 0-0, the whole backlog
    done, started = 0, time.perf_counter()
    while done < n:
        streams = cg.read(1, block=BLOCK_TIME)
        for _stream_id, messages in streams:
            for message_id, message in messages:
                check_reading(decode(message))  # process_message(message_id, message)
                cg.app_event.ack(message_id)  # the companion's spelling: walrus names it after the key
                done += 1
    return done / (time.perf_counter() - started)
