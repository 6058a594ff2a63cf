"""Ctrl-C and SIGTERM: a signal handler only sets a flag; the loops check it between batches.

Printing from a signal handler can collide with a print in progress, so the handlers write
straight to file descriptor 2 when they say anything at all.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager


class StopNow(BaseException):
    """A second Ctrl-C: leave now; whatever is unacknowledged stays pending in Redis."""


class Stop:
    """For the scripts that work in batches (producer, consumer).

    The first signal only sets the flag (the loop finishes the batch in hand, then stops);
    the second raises StopNow at once.
    """

    def __init__(self):
        self.requested = False
        self.busy = None  # () -> seconds the batch in hand has been in the handler (the consumer's)
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def __bool__(self):
        return self.requested

    def sleep(self, seconds: float) -> None:
        pause(self, seconds)

    def _handle(self, signum, frame):
        if self.requested:
            raise StopNow()
        self.requested = True
        waiting = self.busy() if self.busy else 0.0
        if waiting >= 1:  # a slow or hung handler: say what the stop waits for
            text = f"stopping after the batch in hand: waiting for the handler, at work on it for {waiting:.0f}s"
        else:
            text = "stopping after the batch in hand"
        os.write(2, f"{text} (Ctrl-C again to quit at once)\n".encode())


class Interrupt:
    """For admin.py's tail and watch, which only read: stop at once while waiting for Redis or
    the next refresh; otherwise after the line in hand, so no output is cut in half."""

    def __init__(self):
        self.requested = self._waiting = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def __bool__(self):
        return self.requested

    def _handle(self, signum, frame):
        self.requested = True
        if self._waiting:
            raise KeyboardInterrupt

    @contextmanager
    def waiting(self):
        self._waiting = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        finally:
            self._waiting = False


def leave(code: int) -> None:
    """Exit with this code, even if a handler left threads running that are not daemons (Python
    would wait for them for ever after the summary line)."""
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not left:
        sys.exit(code)
    names = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    sys.stderr.write(f"exiting without waiting for {len(left)} thread(s) the handler left running ({names})\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def pause(stop, seconds: float) -> None:
    """time.sleep that ends early once `stop` (any flag that is true when set) is set.

    A plain sleep goes on after a signal handler ran; this one wakes within 50 ms.
    """
    deadline = time.monotonic() + seconds
    while not stop and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
