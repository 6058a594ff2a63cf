"""A handler that spends its time waiting, as real ones do (a database, an HTTP API): 10 ms a reading.

    python consumer.py slow s1 --handler examples.slow:process                       # 100 a second
    python consumer.py slow s1 --handler examples.slow:process --concurrency 32      # 32 at once
    python consumer.py slow s1 --handler examples.slow:wait --concurrency 100        # async def, 100 at once

`process` blocks its thread: --concurrency runs it on that many threads. `wait` is an `async def`
that awaits: --concurrency runs that many at once on one event loop, with no thread each.
"""

from __future__ import annotations

import asyncio
import time

DELAY = 0.01  # seconds a reading takes: the round trip to a service


def process(message_id: str, message: dict[str, str]) -> None:
    time.sleep(DELAY)  # a blocking call: requests.post(...), cursor.execute(...)


async def wait(message_id: str, message: dict[str, str]) -> None:
    await asyncio.sleep(DELAY)  # an awaited call: await client.post(...), await conn.execute(...)
