"""`admin.py watch`: the info view, refreshed until Ctrl-C, with the rates between two refreshes."""

from __future__ import annotations

import time

from ..ids import entries_read
from ..stopping import Interrupt
from . import info
from .output import CLEAR

# What `admin.py watch --help` says (admin.py declares the command and its options).
HELP = """The info view, refreshed every --interval seconds until Ctrl-C, with rates.

\b
    python admin.py watch
    python admin.py watch --json --interval 5 >> stream-stats.jsonl

Adds the entries added per second to the stream and, per group, the entries acknowledged per
second, both measured between two refreshes. With --json it prints one JSON document per
refresh, one per line (the info document plus "rates"). If Redis goes away, it says so and
carries on when Redis is back.
"""


def refreshes(connection, *, scope, cap, warn_idle: int, interval: float):
    """The info document with "rates" every `interval` seconds, until Ctrl-C.

    If Redis goes away, say so and carry on when it is back. Sharded: the totals, and a row per shard.
    """
    interrupt = Interrupt()
    before = None
    try:
        while not interrupt:
            started = time.monotonic()
            try:
                doc = info.snapshot(connection, scope, cap, warn_idle)
            except connection.transient as exc:
                connection.wait_until_back(interrupt, exc)  # then refresh again
                continue
            now = time.monotonic()
            rate = rates(before[1], doc, now - before[0]) if before else FIRST
            yield {**doc, "rates": rate}
            before = (now, doc)
            with interrupt.waiting():  # every --interval from the start of one refresh to the next
                time.sleep(max(interval - (time.monotonic() - started), 0))
    except KeyboardInterrupt:
        pass


FIRST = {"seconds": None, "added_per_s": None, "acknowledged_per_s": {}}  # the rates of the first refresh


def render(docs, *, scope, interval: float):
    """Each refresh on a clear screen (on a terminal): the time, then the info view with rates."""
    for doc in docs:
        yield CLEAR
        yield f"{time.strftime('%H:%M:%S')}  every {interval:g}s, Ctrl-C to stop"
        yield ""
        yield from info.render(doc, doc["rates"], scope)
        yield ""


def rates(before: dict, after: dict, seconds: float) -> dict:
    """Entries added per second, and per group entries acknowledged per second.

    Acknowledged = newly delivered (entries-read grew) minus newly pending (pending grew).
    None where the server does not report what is needed.
    """

    def per_second(a, b):
        return None if a is None or b is None else round((b - a) / seconds, 1)

    def read(group):
        return entries_read(group["entries_read"], group["last_delivered_id"])

    old = {g["name"]: g for g in before["groups"]}
    acked = {}
    for group in after["groups"]:
        prev = old.get(group["name"])
        if prev is None or read(prev) is None or read(group) is None:
            acked[group["name"]] = None
            continue
        delivered = read(group) - read(prev)
        acked[group["name"]] = round((delivered - (group["pending"] - prev["pending"])) / seconds, 1)
    return {
        "seconds": round(seconds, 3),
        "added_per_s": per_second(before["stream"]["entries_added"], after["stream"]["entries_added"]),
        "acknowledged_per_s": acked,
    }
