"""Running many handler calls at once: a pool of threads for a plain function, one event loop for an
`async def` one. Both run *jobs* (here: the chain of one sensor's entries, stream_pubsub/running.py)
and return when every job of the batch has ended.

Threads suit a handler that blocks (a database driver, `requests`, `time.sleep`): N threads, N
calls at once. An `async def` handler that awaits its I/O runs on one loop, up to N at once, with no
thread each; it must not block the loop itself (a blocking call in it stalls all N).

The threads are daemons and the loop's thread too: a handler that hangs does not keep the consumer
from exiting once it has let the work go.
"""

from __future__ import annotations

import asyncio
import queue
import threading


class Threads:
    def __init__(self, n: int):
        self.n, self.jobs, self.threads = n, queue.SimpleQueue(), []

    def run(self, jobs: list) -> None:
        """Run each job (a function of no arguments) on a thread of the pool; return when all ended."""
        if not jobs:
            return
        if not self.threads:
            for i in range(self.n):
                thread = threading.Thread(target=self._work, name=f"handler-{i + 1}", daemon=True)
                thread.start()
                self.threads.append(thread)
        left, lock, ended = [len(jobs)], threading.Lock(), threading.Event()

        def one(job):
            try:
                job()
            finally:
                with lock:
                    left[0] -= 1
                    if not left[0]:
                        ended.set()

        for job in jobs:
            self.jobs.put((one, job))
        ended.wait()  # (a second Ctrl-C interrupts it: the consumer quits at once)

    def _work(self) -> None:
        while True:
            one, job = self.jobs.get()
            one(job)


class EventLoop:
    def __init__(self, n: int):
        self.n, self.loop, self.slots = n, None, None

    def run(self, jobs: list) -> None:
        """Run each job (a coroutine function taking the semaphore of N slots); return when all ended."""
        if not jobs:
            return
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="handler-loop", daemon=True).start()
            self.slots = asyncio.run_coroutine_threadsafe(_semaphore(self.n), self.loop).result()

        async def all_of_them():
            await asyncio.gather(*(job(self.slots) for job in jobs))

        asyncio.run_coroutine_threadsafe(all_of_them(), self.loop).result()


async def _semaphore(n: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(n)  # (made on the loop's own thread)
