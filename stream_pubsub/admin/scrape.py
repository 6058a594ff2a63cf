"""What `admin.py metrics` reads from Redis at each scrape, as samples of the metrics named in
stream_pubsub/metric_names.py. It only reads: nothing is written, no group is created.

Every stream it covers is read shard by shard, each shard from the node that holds it, in two
pipelined round trips per node, however many shards and groups there are:

1. per shard: XINFO STREAM (length, IDs, entries added), XINFO GROUPS (pending, lag, entries
   read), XINFO STREAM of its dead-letter key (length, newest entry); and TIME once per node, so
   ages are measured on the clock that stamped the IDs;
2. per group: XINFO CONSUMERS (pending, idle, inactive) and, when something is pending, XPENDING
   of its 100 oldest entries (the oldest's age and idle time, the highest delivery count).

Only a group whose lag the server cannot tell (6.2, or deleted entries after its position) costs
more: its lag is counted with XRANGE, as `admin.py info` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis.exceptions as rex

from .. import metric_names as m
from ..ids import count_entries, parse_id
from ..telling import UserError
from .scope import Scope, Shard, scope

PENDING_LOOKED_AT = 100  # the oldest pending entries XPENDING returns per group and scrape
WILDCARD = re.compile(r"[*?\[]")  # a --stream with one of these is a pattern (SCAN MATCH)
SHARD_KEY = re.compile(r"^(?P<stream>.+):\{shard\d+-\d+\}$")  # shards.py's keys: <stream>:{shard<i>-<k>}
MOVING = (rex.AskError, rex.TryAgainError)  # a cluster's slot is elsewhere now (MovedError is an AskError)


@dataclass
class Sample:
    metric: m.Metric
    labels: dict[str, str]
    value: float


@dataclass
class Place:
    """One stream key to read (a shard, or the whole stream), and what was read."""

    scope: Scope
    shard: Shard
    labels: dict[str, str]
    stream: dict | None = None  # XINFO STREAM; None: no such key
    groups: list = field(default_factory=list)
    dead: dict | None = None  # XINFO STREAM of its dead-letter key
    now_ms: int = 0  # TIME on its node
    dead_now_ms: int = 0


# -- which streams ---------------------------------------------------------------------------------
def covered(connection, streams: list[str], dlq: str | None = None) -> list[Scope]:
    """The streams to read: each --stream as given, and every stream with keys matching a pattern.

    A key found by a pattern that is the shard of a sharded stream stands for the whole sharded
    stream; one that is the dead-letter stream of another covered stream is left to that stream.
    """
    given = [s for s in streams if not WILDCARD.search(s)]
    found = sorted({name for s in streams if WILDCARD.search(s) for name in matching(connection, s)} - set(given))
    scopes = [scope(connection, name, dlq=dlq) for name in dict.fromkeys(given + found)]
    dead_letters = {s.dlq for s in scopes}
    return [s for s in scopes if s.stream in given or s.stream not in dead_letters]


def matching(connection, pattern: str) -> set[str]:
    """The streams whose keys match: SCAN MATCH pattern TYPE stream, on every master of a cluster."""
    clients = [n.redis_connection for n in connection.db.get_primaries()] if connection.cluster else [connection.db]
    names = set()
    for client in clients:
        for key in client.scan_iter(match=pattern, count=1000, _type="stream"):
            key = key.decode()
            names.add(shard.group("stream") if (shard := SHARD_KEY.match(key)) else key)
    return names


# -- reading ----------------------------------------------------------------------------------------
def read(connection, scopes: list[Scope]) -> list[Sample]:
    """Every sample of every stream in `scopes`, read now."""
    db = "db0" if connection.cluster else f"db{connection.db.connection_pool.connection_kwargs.get('db', 0)}"
    places = [Place(where, shard, labels(db, where, shard)) for where in scopes for shard in where.shards]
    calls = [c for p in places for c in (("xinfo_stream", p.shard.key), ("xinfo_groups", p.shard.key))]
    replies = round_trip(connection, calls + [("xinfo_stream", p.shard.dlq) for p in places])
    for i, place in enumerate(places):
        (stream, place.now_ms), (groups, _) = replies[2 * i], replies[2 * i + 1]
        dead, place.dead_now_ms = replies[2 * len(places) + i]
        place.stream = present(connection, stream, place.shard.key)
        place.groups = (present(connection, groups, place.shard.key) or []) if place.stream else []
        place.dead = present(connection, dead, place.shard.dlq)

    calls = []
    for place in places:
        for group in place.groups:
            calls.append(("xinfo_consumers", place.shard.key, group["name"]))
            if group["pending"]:
                calls.append(("xpending_range", place.shard.key, group["name"], "-", "+", PENDING_LOOKED_AT))
    replies = iter(round_trip(connection, calls))
    samples = [Sample(m.SHARDS, {"db": db, "stream": where.stream}, where.count) for where in scopes]
    for place in places:
        info = {"key": place.shard.key, "dead_letter": place.shard.dlq, "node": connection.node_of(place.shard.key)}
        samples.append(Sample(m.KEY_INFO, {**place.labels, **info}, 1))  # where it was read: after any move
        for group in place.groups:
            consumers = present(connection, next(replies)[0], place.shard.key) or []
            pending = (present(connection, next(replies)[0], place.shard.key) or []) if group["pending"] else []
            samples += group_samples(connection, place, group, consumers, pending)
        samples += stream_samples(place)
    return samples


def labels(db: str, where: Scope, shard: Shard) -> dict[str, str]:
    """db and stream; and shard, only where the stream is one shard of a sharded stream."""
    return {"db": db, "stream": where.stream, **({"shard": str(shard.index)} if where.sharded else {})}


def round_trip(connection, calls: list[tuple]) -> list[tuple]:
    """(reply, the node's time in ms) for each call (method, key, *args), one pipeline per node.

    An error comes back as the exception object, in its place. If a cluster's slot moved
    meanwhile (a failover, a migration), learn the slots anew and send the round again, once.
    """
    replies = send(connection, calls)
    if connection.cluster and any(isinstance(reply, MOVING) for reply, _ in replies):
        connection.db.nodes_manager.initialize()
        replies = send(connection, calls)
    return replies


def send(connection, calls: list[tuple]) -> list[tuple]:
    nodes: dict[str, tuple] = {}
    for i, call in enumerate(calls):
        name, client = node(connection, call[1])
        nodes.setdefault(name, (client, []))[1].append(i)
    replies: list = [None] * len(calls)
    for client, indexes in nodes.values():
        with client.pipeline(transaction=False) as pipe:
            pipe.time()
            for i in indexes:
                method, key, *args = calls[i]
                getattr(pipe, method)(key, *args)
            now, *answers = pipe.execute(raise_on_error=False)
        if isinstance(now, Exception):
            raise now
        for i, answer in zip(indexes, answers):
            replies[i] = (answer, now[0] * 1000 + now[1] // 1000)
    return replies


def node(connection, key: str):
    """(name, client) of the server holding the key: on a cluster its master, which does not follow MOVED."""
    if not connection.cluster:
        return connection.where, connection.db
    found = connection.db.get_node_from_key(key)
    return found.name, found.redis_connection


def present(connection, reply, key: str):
    """The reply; None for a key or group that does not exist (any more); other errors raised."""
    if not isinstance(reply, Exception):
        return reply
    if str(reply) == "no such key" or str(reply).startswith("NOGROUP"):
        return None
    if isinstance(reply, rex.ResponseError) and not isinstance(reply, MOVING):
        raise UserError(connection.describe(reply, key))
    raise reply


# -- samples ----------------------------------------------------------------------------------------
def ms(entry_id) -> int:
    return parse_id(entry_id)[0]


def stream_samples(place: Place) -> list[Sample]:
    labels, info, dead = place.labels, place.stream, place.dead
    samples = [Sample(m.DEAD_LETTERS, labels, dead["length"] if dead else 0)]
    if dead and dead.get("last-entry"):
        age = (place.dead_now_ms - ms(dead["last-entry"][0])) / 1000
        samples.append(Sample(m.DEAD_LETTER_AGE, labels, max(age, 0)))
    if info is None:
        return samples
    values = [
        (m.STREAM_LENGTH, info["length"]),
        (m.RADIX_TREE_KEYS, info["radix-tree-keys"]),
        (m.RADIX_TREE_NODES, info["radix-tree-nodes"]),
        (m.GROUPS, info["groups"]),
        (m.FIRST_ENTRY_ID, ms(info["first-entry"][0]) if info.get("first-entry") else 0),
        (m.LAST_ENTRY_ID, ms(info["last-entry"][0]) if info.get("last-entry") else 0),
        (m.LAST_GENERATED_ID, ms(info["last-generated-id"])),
        (m.MAX_DELETED_ID, ms(info["max-deleted-entry-id"]) if info.get("max-deleted-entry-id") else 0),
        (m.ENTRIES_ADDED, info.get("entries-added")),  # 7.0+
    ]
    return samples + [Sample(metric, labels, value) for metric, value in values if value is not None]


def group_samples(connection, place: Place, group: dict, consumers: list, pending: list) -> list[Sample]:
    labels = {**place.labels, "group": group["name"].decode()}
    lag = group.get("lag")
    if lag is None:  # 6.2, or the server cannot tell (deleted entries after its position): count
        lag = count_entries(connection.db, place.shard.key, "(" + group["last-delivered-id"].decode())
    values = [
        (m.GROUP_CONSUMERS, group["consumers"]),
        (m.GROUP_PENDING, group["pending"]),
        (m.GROUP_LAST_DELIVERED_ID, ms(group["last-delivered-id"])),
        (m.GROUP_ENTRIES_READ, group.get("entries-read")),
        (m.GROUP_LAG, lag),
        (m.TRIMMED_UNREAD, trimmed_unread(place.stream, group)),
    ]
    if pending:
        oldest = pending[0]
        values += [
            (m.OLDEST_PENDING_AGE, max(place.now_ms - ms(oldest["message_id"]), 0) / 1000),
            (m.OLDEST_PENDING_IDLE, oldest["time_since_delivered"] / 1000),
            (m.MAX_DELIVERIES, max(row["times_delivered"] for row in pending)),
        ]
    samples = [Sample(metric, labels, value) for metric, value in values if value is not None]
    for consumer in consumers:
        who = {**labels, "consumer": consumer["name"].decode()}
        samples += [
            Sample(m.CONSUMER_PENDING, who, consumer["pending"]),
            Sample(m.CONSUMER_IDLE, who, consumer["idle"] / 1000),
        ]
        if consumer.get("inactive", -1) >= 0:  # 7.2+ and Valkey; -1: it never got anything
            samples.append(Sample(m.CONSUMER_INACTIVE, who, consumer["inactive"] / 1000))
    return samples


def trimmed_unread(info: dict, group: dict) -> int | None:
    """Entries trimmed from the stream before the group read them; None where the server cannot tell.

    Trimming removes from the old end: a group whose position is older than the stream's first
    entry has lost what was added after its position and is no longer there, that is the entries
    added (7.0+) - the entries it read - the stream's length. Once it reads on, past the gap, this
    is 0 again (the consumer counts the loss as it reads: its `trimmed` outcome). Holes that
    XDEL made in the middle are not counted here (`admin.py info` counts them).
    """
    added, last = info.get("entries-added"), parse_id(group["last-delivered-id"])
    first = info.get("first-entry")
    if added is None:
        return None
    if last >= parse_id(info["last-generated-id"]) or (first and last >= parse_id(first[0])):
        return 0  # read everything there ever was, or not behind the stream's first entry
    read = group.get("entries-read")
    if read is None and last == (0, 0):
        read = 0  # a group that never read anything
    return None if read is None else max(added - read - info["length"], 0)
