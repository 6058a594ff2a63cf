"""`admin.py range` and `tail`: the stream's history, which pub/sub does not keep, read without a
group (XRANGE, XREAD): reading changes nothing for the consumer groups.

A sharded stream is read shard by shard and merged by ID, each entry naming its shard's key (two
shards can hold the same ID). One XREAD can wait on several keys of one server, not on keys of
several slots: on a cluster, tail waits on each shard in a thread of its own.
"""

from __future__ import annotations

import heapq
import json
import queue
import threading
import time
from itertools import islice

import click
import redis.exceptions as rex

from ..connection import unblocked
from ..ids import id_text, parse_id, read_range
from ..stopping import Interrupt
from . import keys
from .output import emit_streamed, entry_doc, entry_line, plural


def show_range(connection, scope, start: str, end: str, *, count: int, reverse: bool, as_json: bool) -> None:
    """Print the entries between two bounds (count 0: all), oldest first unless reverse.

    Read a page at a time from each shard, merged by ID and printed as they come: a range of
    millions neither blocks Redis with one huge reply nor piles up in memory here.
    """
    with connection.errors(key=scope.name):
        held = keys.held(connection, scope)
        merged = merged_entries(connection, held, start, end, count=count, reverse=reverse, sharded=scope.sharded)
        shown = islice(merged, count or None)
        if as_json:
            emit_streamed(
                {"stream": scope.name},
                "entries",
                (entry_doc(i, f, key) for i, f, key, _ in shown),
                lambda: {"more": next(merged, None) is not None},
            )
            return
        last, n = None, 0
        for entry_id, fields, key, _ in shown:
            click.echo(entry_line(entry_id, fields, key))
            last, n = entry_id, n + 1
        following = next(merged, None) if count else None
    if not n:
        click.echo(f"no entries in {scope.label} between {start} and {end}", err=True)
    elif following:
        last = last.decode()  # another shard holds this same ID, not shown yet: go on from it
        after = f"'({last}'" if following[0].decode() != last else last
        hint = f"{start} {after} --reverse" if reverse else f"{after} {end}"
        click.echo(f"(more entries follow: raise --count, or go on with `admin.py range {hint}`)", err=True)


def merged_entries(connection, held, start: str, end: str, *, count: int, reverse: bool, sharded: bool):
    """(ID, fields, shard key or None, shard index) of every shard, merged in ID order, read a
    page at a time; count N: at most N + 1 from each shard (one more tells that more follow)."""

    def of(shard):
        limit = count + 1 if count else None
        for entry_id, fields in read_range(connection.db, shard.key, start, end, reverse=reverse, limit=limit):
            yield entry_id, fields, shard.key if sharded else None, shard.index

    return heapq.merge(*map(of, held), key=lambda row: (parse_id(row[0]), row[3]), reverse=reverse)


def tail(connection, scope, start: str, *, count: int, block: int, as_json: bool) -> None:
    """Print entries as they are added (XREAD BLOCK) until Ctrl-C, carrying on after Redis comes back."""
    interrupt = Interrupt()
    shown, positions = 0, {shard.key: start for shard in scope.shards}
    try:
        with connection.errors(key=scope.name):
            if start == "$":  # fix "now" once: reading `$` again after each read could skip entries
                for key in positions:
                    exists = keys.is_stream(connection, key)
                    positions[key] = id_text(connection.db.xinfo_stream(key)["last-generated-id"]) if exists else "0-0"
            since = next(iter(positions.values())) if len(positions) == 1 else "now" if start == "$" else start
            click.echo(f"tail {scope.label}: entries after {since} (Ctrl-C to stop)", err=True)
            read = (
                Followers(connection, positions, count, block).read
                if len(positions) > 1 and connection.cluster
                else None
            )
            while not interrupt:
                try:
                    with interrupt.waiting():
                        reply = read() if read else connection.db.xread(dict(positions), count=count, block=block)
                except connection.transient as exc:
                    connection.wait_until_back(interrupt, exc)  # then go on from the last entry shown
                    continue
                except rex.ResponseError as exc:
                    if woken(connection, exc):
                        continue
                    raise
                batch = [(i, f, id_text(key)) for key, entries in reply for i, f in entries]
                for entry_id, fields, key in sorted(batch, key=lambda entry: parse_id(entry[0])):
                    shard = key if scope.sharded else None
                    click.echo(
                        json.dumps(entry_doc(entry_id, fields, shard))
                        if as_json
                        else entry_line(entry_id, fields, shard)
                    )
                    positions[key] = entry_id
                shown += len(batch)
    except KeyboardInterrupt:
        pass
    click.echo(f"tail stopped after {plural(shown, 'entry')}", err=True)


class Followers:
    """On a cluster: a thread per shard blocks in its own XREAD and hands what it read to `read`.

    A thread that fails (Redis went away) hands over its error and ends; `read` raises it, once for
    all the threads that failed together, and starts them again from the last entry shown.
    """

    def __init__(self, connection, positions: dict, count: int, block: int):
        self.connection, self.positions, self.count, self.block = connection, positions, count, block
        self.handed: queue.Queue = queue.Queue()
        self.running: set[str] = set()
        self.raised, self.resumed = False, 0.0

    def follow(self, key: str, last) -> None:
        try:
            while True:
                try:
                    reply = self.connection.db.xread({key: last}, count=self.count, block=self.block)
                except rex.ResponseError as exc:
                    if woken(self.connection, exc):
                        continue
                    raise
                for _key, entries in reply:
                    self.handed.put((key, entries, None, 0.0))
                    last = entries[-1][0]
        except Exception as exc:  # handed to the main thread, which says it
            self.handed.put((key, None, exc, time.monotonic()))

    def read(self) -> list:
        if self.raised:  # the caller waited until Redis was back
            self.raised, self.resumed = False, time.monotonic()
        for key in self.positions.keys() - self.running:
            self.running.add(key)
            threading.Thread(target=self.follow, args=(key, self.positions[key]), daemon=True).start()
        try:
            key, entries, exc, when = self.handed.get(timeout=self.block / 1000)
        except queue.Empty:
            return []
        if exc is None:
            return [(key, entries)]
        self.running.discard(key)
        if when < self.resumed:  # it failed before Redis was back: only start it again
            return []
        self.raised = True
        raise exc


def woken(connection, exc: Exception) -> bool:
    """A blocked read that Redis 7.0 ended because its slot moved (failover, migration): read again."""
    return connection.cluster and unblocked(exc)
