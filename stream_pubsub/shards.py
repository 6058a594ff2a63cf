"""Sharded streams: one logical stream (`app:event`) as N stream keys, so it can outgrow one master.

Redis never splits a stream: a stream is one key, one hash slot, one master. With --shards N the
logical stream is N keys, each with a hash tag of its own (the text between `{` and `}` is what
is hashed), so the shards spread over the masters of a cluster:

    app:event:{shard0-63}  app:event:{shard1-33}  ...  app:event:{shard11-1}    (12 shards)

The tag of shard i is the first `shard<i>-<k>` whose slot falls in the middle of the i-th of N
equal parts of the 16384 slots: with the usual even slot layout, 12 shards over 3 masters are 4 on
each (plain `{app:event:0}`..`{app:event:11}` would give 3/3/6). The tags do not depend on the
stream's name, so shard i of every logical stream with N shards is in the same slot: the dead
letters of shard i (`app:event:dlq:{shard<i>-<k>}`) and what a consumer fans out from it
(`app:alerts:{shard<i>-<k>}`) can be written in one MULTI with its XACK.

A reading goes to the shard of its sensor, by a stable hash (CRC-32; never Python's hash(), which
changes with every process), so one sensor's readings stay in order in one shard.

N is recorded in Redis (`<stream>:shards`) by the first script that uses the stream with
--shards; scripts run without --shards use it. With --shards 1 (the default) the logical stream
is the single key itself, as in the tutorial.
"""

from __future__ import annotations

import zlib
from functools import cache
from itertools import count

import redis.exceptions as rex
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot

from .telling import UserError

MAX_SHARDS = 256


def slot(key: str) -> int:
    return key_slot(key.encode())


def has_hash_tag(key: str) -> bool:
    """True if the key names its own hash tag ({...} with something inside)."""
    start = key.find("{")
    return start > -1 and key.find("}", start + 1) > start + 1


@cache
def tag(index: int, shards: int) -> str:
    """The hash tag of shard `index` of `shards`: its slot lies in the middle half of its part."""
    part = SLOTS / shards
    low, high = int(part * index + part / 4), int(part * index + part * 3 / 4)
    high = max(high, low + 1)
    return next(t for k in count() if low <= slot("{" + (t := f"shard{index}-{k}") + "}") < high)


def keys(logical: str, shards: int) -> list[str]:
    """The stream keys of a logical stream: itself when it is not sharded."""
    if shards == 1:
        return [logical]
    return [f"{logical}:{{{tag(i, shards)}}}" for i in range(shards)]


def route(sensor_id: str, shards: int) -> int:
    """The shard of a sensor: the same in every process, for ever."""
    return zlib.crc32(sensor_id.encode()) % shards if shards > 1 else 0


def record_key(logical: str) -> str:
    return f"{logical}:shards"


def companion(logical_companion: str, index: int, shards: int) -> str:
    """Shard `index` of a companion stream (dead letters, fan-out): in the same slot as shard `index`."""
    return keys(logical_companion, shards)[index]


def resolve(db, logical: str, asked: int | None, *, where: str) -> int:
    """How many shards the logical stream has: the recorded number, or `asked` (recorded if new).

    A different number than the recorded one is refused with one line, and nothing is written;
    so is sharding a stream whose single key already holds entries (its sensors would move).
    """
    try:
        recorded = db.get(record_key(logical))
    except rex.NoPermissionError:
        if asked and asked > 1:
            raise
        return 1  # a least-privilege user of an unsharded stream need not read the record
    if recorded is not None:
        if not recorded.isdigit() or not 1 <= int(recorded) <= MAX_SHARDS:
            raise UserError(
                f"{record_key(logical)} at {where} holds {recorded[:40]!r}, not a number of shards; left untouched"
            )
        have = int(recorded)
        if asked is not None and asked != have:
            raise UserError(
                f"{logical} at {where} has {have} shards (recorded in {record_key(logical)}), not {asked}: changing "
                "the number of shards of a stream is not offered (it would move sensors between shards); "
                f"leave out --shards to use {have}"
            )
        return have
    if not asked or asked == 1:
        return 1
    if db.exists(logical) and db.type(logical) == b"stream" and db.xlen(logical):
        raise UserError(
            f"{logical} at {where} already holds entries as 1 stream, not {asked} shards: changing the number of "
            "shards of a stream that has data is not offered (it would move sensors between shards)"
        )
    if not db.set(record_key(logical), asked, nx=True):  # another script recorded one meanwhile
        return resolve(db, logical, asked, where=where)
    return asked


def recorded(db, logical: str) -> int | None:
    """The number of shards recorded for the logical stream now (None: none, or not readable)."""
    try:
        found = db.get(record_key(logical))
    except rex.NoPermissionError:
        return None
    return int(found) if found is not None and found.isdigit() and 1 <= int(found) <= MAX_SHARDS else None


def default_dead_letters(stream: str, *, cluster: bool) -> str:
    """<stream>:dlq; on a cluster {<stream>}:dlq for an untagged stream, so it shares the stream's slot."""
    if cluster and not has_hash_tag(stream):
        return f"{{{stream}}}:dlq"
    return f"{stream}:dlq"


class Layout(list):
    """[(stream key, dead-letter key, fan-out key or None)] for each shard of a logical stream."""

    def __init__(self, stream: str, found: list, fanout: str | None, dlq: str | None):
        super().__init__(found)
        self.stream, self.fanout, self.dlq = stream, fanout, dlq

    @property
    def n(self) -> int:
        """How many shards: one key each."""
        return len(self)

    def record(self, db) -> None:
        """Record the number of shards again (after FLUSHALL took it), so producers find it."""
        for logical in filter(None, (self.stream, self.fanout) if self.n > 1 else ()):
            db.set(record_key(logical), self.n, nx=True)


def layout(connection, stream: str, asked: int | None, *, dlq: str | None, fanout: str | None):
    """The keys of each shard (a Layout), every one checked (on the connection's server or cluster).

    A dead-letter or fan-out key is written in the same MULTI as the XACK of its shard, so on a
    cluster it must be in the shard's slot: one that cannot be is refused before anything is read.
    """
    db, cluster, where = connection.db, connection.cluster, connection.where
    n, asked_dlq = resolve(db, stream, asked, where=where), dlq
    dlq = dlq or default_dead_letters(stream, cluster=cluster and n == 1)
    if fanout and n > 1:
        resolve(db, fanout, n, where=where)  # readers of the fan-out stream find its shards too
    found = []
    for i, key in enumerate(keys(stream, n)):
        companions = [companion(dlq, i, n), companion(fanout, i, n) if fanout else None]
        for what, other, option in zip(("dead-letter", "fan-out"), companions, ("--dead-letter", "--fanout")):
            if other is None or not cluster:
                continue
            if slot(other) != slot(key):
                suffix = "dlq" if option == "--dead-letter" else other
                hint = f"{{{key}}}:{suffix}" if n == 1 else "a name without { }"
                raise UserError(
                    f"the {what} stream {other} cannot share the slot of {key} (slot {slot(key)}), so its XADD and "
                    f"the XACK cannot be one transaction on a cluster: give {option} {hint}"
                )
        for option, other in zip(("--dead-letter", "--fanout"), companions):
            if other is not None and (kind := _type(db, other)) not in (b"stream", b"none"):
                raise UserError(f"{option} {other} holds a {kind.decode()}, not a stream (WRONGTYPE); left untouched")
        found.append((key, *companions))
    return Layout(stream, found, fanout, asked_dlq)


def _type(db, key: str) -> bytes:
    """TYPE of a key; b"none" for a user who may not ask (its XADD will say what is wrong)."""
    try:
        return db.type(key)
    except rex.NoPermissionError:
        return b"none"
