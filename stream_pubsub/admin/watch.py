"""`admin.py watch`: the info view, refreshed until Ctrl-C, with the rates between two refreshes."""

from __future__ import annotations

import json
import sys
import time

import click

from ..ids import entries_read
from ..stopping import Interrupt
from . import info


def watch(connection, *, scope, cap, warn_idle: int, as_json: bool, interval: float) -> None:
    """Print the info view (or one JSON document a line) every `interval` seconds until Ctrl-C.

    If Redis goes away, say so and carry on when it is back. Sharded: the totals, and a row per shard.
    """
    interrupt = Interrupt()
    before = None
    try:
        with connection.errors(key=scope.name):
            while not interrupt:
                started = time.monotonic()
                try:
                    doc = info.snapshot(connection, scope, cap, warn_idle)
                except connection.transient as exc:
                    connection.wait_until_back(interrupt, exc)  # then refresh again
                    continue
                now = time.monotonic()
                rate = (
                    rates(before[1], doc, now - before[0])
                    if before
                    else {"seconds": None, "added_per_s": None, "acknowledged_per_s": {}}
                )
                if as_json:
                    click.echo(json.dumps({**doc, "rates": rate}))
                else:
                    if sys.stdout.isatty():
                        click.clear()
                    click.echo(f"{time.strftime('%H:%M:%S')}  every {interval:g}s, Ctrl-C to stop\n")
                    click.echo(info.render(doc, rate, scope) + "\n")
                before = (now, doc)
                with interrupt.waiting():  # every --interval from the start of one refresh to the next
                    time.sleep(max(interval - (time.monotonic() - started), 0))
    except KeyboardInterrupt:
        pass


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
