"""`admin.py range` and `tail`: the stream's history, which pub/sub does not keep, read without a
group (XRANGE, XREAD): reading changes nothing for the consumer groups.

A sharded stream is read shard by shard and merged by ID, each entry naming its shard's key (two
shards can hold the same ID). One XREAD can wait on several keys of one server, not on keys of
several slots: on a cluster, tail waits on each shard in a thread of its own.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from itertools import islice

import redis.exceptions as rex

from ..connection import unblocked
from ..ids import id_text, parse_id, read_range
from ..stopping import Interrupt
from ..telling import say
from . import keys
from .output import Later, entry_doc, entry_line, plural

# What `admin.py range --help` and `admin.py tail --help` say (admin.py declares the commands and options).
RANGE_HELP = """The stream's history between START and END (default: all of it), oldest first.

\b
    python admin.py range
    python admin.py range 1700000000000 + --count 10
    python admin.py range --reverse --count 5

START and END are IDs (a bare time in milliseconds means its first or last entry), - for the
oldest, + for the newest, or (ID to leave that ID out. This is the history that pub/sub does
not keep; reading it changes nothing for consumer groups. A sharded stream's shards are merged
in ID order, each entry followed by its shard's key.
"""

TAIL_HELP = """Print entries as they are added (XREAD BLOCK), until Ctrl-C.

\b
    python admin.py tail
    python admin.py tail --from 0

Unlike a consumer group, where each entry goes to one consumer, every reader with XREAD sees
every entry: run it in two terminals and both print everything. It keeps no position in
Redis and acknowledges nothing. Ctrl-C stops it (exit 0). A sharded stream: every shard.
"""


def entries_between(connection, scope, start: str, end: str, *, count: int, reverse: bool) -> dict:
    """The document of the entries between two bounds (count 0: all), oldest first unless reverse.

    Read a page at a time from each shard, merged by ID as they are printed: a range of millions
    neither blocks Redis with one huge reply nor piles up in memory here.
    """
    held = keys.held(connection, scope)
    merged = merged_entries(connection, held, start, end, count=count, reverse=reverse, sharded=scope.sharded)
    return {
        "stream": scope.name,
        "entries": (entry_doc(i, f, key) for i, f, key, _ in islice(merged, count or None)),
        "more": Later(lambda: next(merged, None), as_json=bool),  # (the text goes on from the next one)
    }


def render_range(doc: dict, *, scope, start: str, end: str, reverse: bool):
    """The entries, a line each; on stderr, that there were none, or how to read on."""
    last = None
    for entry in doc["entries"]:
        yield entry_line(entry)
        last = entry["id"]
    following = doc["more"].value
    if last is None:
        say(f"no entries in {scope.label} between {start} and {end}")
    elif following:  # another shard may hold this same ID, not shown yet: go on from it
        after = f"'({last}'" if following[0].decode() != last else last
        hint = f"{start} {after} --reverse" if reverse else f"{after} {end}"
        say(f"(more entries follow: raise --count, or go on with `admin.py range {hint}`)")


def merged_entries(connection, held, start: str, end: str, *, count: int, reverse: bool, sharded: bool):
    """(ID, fields, shard key or None, shard index) of every shard, merged in ID order, read a
    page at a time; count N: at most N + 1 from each shard (one more tells that more follow)."""

    def of(shard):
        limit = count + 1 if count else None
        for entry_id, fields in read_range(connection.db, shard.key, start, end, reverse=reverse, limit=limit):
            yield entry_id, fields, shard.key if sharded else None, shard.index

    return heapq.merge(*map(of, held), key=lambda row: (parse_id(row[0]), row[3]), reverse=reverse)


def tail(connection, scope, start: str, *, count: int, block: int):
    """The document of each entry as it is added (XREAD BLOCK), until Ctrl-C; carries on after
    Redis comes back. Says on stderr where it starts and, at the end, how many it showed."""
    interrupt = Interrupt()
    shown, positions = 0, {shard.key: start for shard in scope.shards}
    try:
        if start == "$":  # fix "now" once: reading `$` again after each read could skip entries
            for key in positions:
                exists = keys.is_stream(connection, key)
                positions[key] = id_text(connection.db.xinfo_stream(key)["last-generated-id"]) if exists else "0-0"
        since = next(iter(positions.values())) if len(positions) == 1 else "now" if start == "$" else start
        say(f"tail {scope.label}: entries after {since} (Ctrl-C to stop)")
        read = None
        if len(positions) > 1 and connection.cluster:  # one XREAD cannot wait on keys of several slots
            read = Followers(connection, positions, count, block).read
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
                yield entry_doc(entry_id, fields, key if scope.sharded else None)
                positions[key] = entry_id
            shown += len(batch)
    except KeyboardInterrupt:
        pass
    say(f"tail stopped after {plural(shown, 'entry')}")


def render_tail(entries):
    return map(entry_line, entries)


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
