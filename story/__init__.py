"""The tutorial's story, as `make demo` (demo.py) tells it, one module a step:

    1. sharing.py       three producers publish; two consumers of one group share the readings
    2. claiming.py      a consumer dies mid-batch; its pending entries show up; the other claims them
    3. dead_letters.py  a poison reading ends in the dead-letter stream, with its reason
    4. trimming.py      MAXLEN caps the stream; `admin.py trim --safe` keeps what is unread
    5. pubsub.py        pub/sub loses what a subscriber missed while offline; the stream kept it
    6. info.py          `admin.py info`: nothing pending, nothing lost

stage.py runs the real scripts (producer.py, consumer.py, admin.py) as a reader would in their
terminals, says what is about to happen, and checks in Redis and in their output that it did.
story/cluster/ tells the scale-out story of `make demo-cluster` (demo.py --cluster) the same way.
"""

from __future__ import annotations

from . import claiming, dead_letters, info, pubsub, sharing, trimming
from .stage import Demo


def tell(demo: Demo) -> None:
    demo.prepare()
    c1, c2 = sharing.share(demo)
    claiming.claim(demo, c1, c2)
    dead_letters.poison(demo, c1)
    trimming.trim(demo, c1)
    pubsub.pubsub(demo)
    info.info(demo)
