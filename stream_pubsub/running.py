"""Many entries in the handler at once (--concurrency N), in order per sensor (--order-by FIELD).

The entries of a batch are grouped into chains, one per value of the --order-by field (the
sensor): a chain runs its entries one after the other, in stream order; chains run side by side,
up to N calls at once (stream_pubsub/workers.py). So one sensor's readings never run at the same
time nor out of order, and the other sensors go on while one is slow. An entry without the field
is a chain of its own. The batch is done when every chain is; only then are its entries
acknowledged, so an entry is acknowledged only once its handler returned.

A chain stops at an entry that failed while --retry-delays is set: that entry is retried by this
consumer after its delay, and the sensor's later entries wait behind it (stream_pubsub/retrying.py).
"""

from __future__ import annotations

import inspect

from . import Unprocessable
from .workers import EventLoop, Threads

OK, FAILED, UNPROCESSABLE, EXITED, NOT_RUN = "ok", "failed", "unprocessable", "exited", "not run"


class Item:
    """An entry on its way through the handler, and what came of it."""

    __slots__ = ("id", "fields", "times", "message", "key", "outcome", "result")

    def __init__(self, entry_id: bytes, fields, times: int, message: dict, key):
        self.id, self.fields, self.times, self.message, self.key = entry_id, fields, times, message, key
        self.outcome, self.result = NOT_RUN, None  # result: what the handler returned, or what it raised


def is_async(handler) -> bool:
    call = type(handler).__call__ if not inspect.isroutine(handler) else None  # an object with an async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class Running:
    def __init__(self, handler, *, concurrency: int, order_by: str, retrying: bool):
        self.handler, self.order_by, self.retrying = handler, order_by, retrying
        self.workers = EventLoop(concurrency) if is_async(handler) else Threads(concurrency)
        self.ended = False  # the handler ended the process's work (sys.exit, out of memory): start nothing more

    def key(self, entry_id: bytes, message: dict):
        """The chain an entry belongs to: its --order-by value, or itself alone."""
        value = message.get(self.order_by) if self.order_by else None
        return ("value", value) if value is not None else ("entry", entry_id)

    def run(self, items: list[Item], stop) -> None:
        """Call the handler for each item (those not marked failed already), chain by chain."""
        chains: dict = {}
        for item in items:
            chains.setdefault(item.key, []).append(item)
        if isinstance(self.workers, EventLoop):
            self.workers.run([self._async_chain(chain, stop) for chain in chains.values()])
        else:
            self.workers.run([self._chain(chain, stop) for chain in chains.values()])

    def _chain(self, chain: list[Item], stop):
        def run():
            for item in chain:
                if stop or self.ended:
                    return
                if item.outcome is NOT_RUN:
                    try:
                        item.result, item.outcome = self.handler(item.id.decode(), item.message), OK
                    except BaseException as exc:  # noqa: B036 (said, and decided on, in the consumer's thread)
                        self._failed(item, exc)
                if self._stops(item):
                    return

        return run

    def _async_chain(self, chain: list[Item], stop):
        async def run(slots):
            for item in chain:
                if stop or self.ended:
                    return
                if item.outcome is NOT_RUN:
                    async with slots:
                        try:
                            item.result, item.outcome = await self.handler(item.id.decode(), item.message), OK
                        except BaseException as exc:  # noqa: B036
                            self._failed(item, exc)
                if self._stops(item):
                    return

        return run

    def _failed(self, item: Item, exc: BaseException) -> None:
        item.result = exc
        if isinstance(exc, Unprocessable):
            item.outcome = UNPROCESSABLE
        elif isinstance(exc, (MemoryError, SystemExit, KeyboardInterrupt)):
            item.outcome, self.ended = EXITED, True
        else:  # this delivery failed (an asyncio.CancelledError too); a later one may not
            item.outcome = FAILED

    def _stops(self, item: Item) -> bool:
        """A failed entry that this consumer retries holds its sensor's later entries back."""
        return item.outcome is EXITED or (item.outcome is FAILED and self.retrying)
