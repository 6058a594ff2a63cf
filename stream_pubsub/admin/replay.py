"""`admin.py dlq replay`: put dead letters back on the stream they came from, and remove them here.

Each dead letter is two writes: XADD back to its stream (a new ID, its original fields, none of
the dlq.* ones), then XDEL from the dead-letter stream. Where both keys are in one slot (always
on one server; on a cluster, the defaults put a shard's dead letters in its slot) the two go in
one MULTI/EXEC, BATCH dead letters at a time: each is either back on its stream and gone from
here, or untouched, whatever happens (Ctrl-C, a lost connection, a refused command). Where they
cannot share a transaction (a cluster, keys in two slots) the XDEL follows the XADD only once it
succeeded, and Ctrl-C waits for the pair to finish. Ctrl-C is honoured between batches: it says
how many were replayed and how many remain, and exits 130.

`--all` reads the dead letters a page at a time, up to the newest one there when it starts
(what a consumer dead-letters meanwhile waits for the next replay).
"""

from __future__ import annotations

from itertools import groupby, islice

import redis.exceptions as rex

from .. import shards
from ..dead_letters import split
from ..ids import read_range
from ..stopping import Interrupt
from ..telling import Interrupted, UserError, say
from . import keys
from .dlq import read_dead_letters
from .output import plural

# What `admin.py dlq replay --help` says (admin.py declares the command and its options).
HELP = """Put dead letters back on their stream, to be processed again, and remove them here.

\b
    python admin.py dlq replay 1700000000000-0
    python admin.py dlq replay --all

Each is added again to the stream it came from (a new ID, its original fields, none of the
dlq.* ones) and removed from the dead-letter stream in the same MULTI/EXEC: it is in one
place or the other, never both, never neither. Ctrl-C stops between two batches, says how
many were replayed and how many remain, and exits 130. (On a cluster, a dead-letter key not
in its stream's slot cannot share a transaction: there the removal follows the add, and if it
fails the dead letter is in both places; `dlq purge ID` removes just that one.)
"""

BATCH = 100  # dead letters per MULTI/EXEC: a few milliseconds of Redis's time


def replay(connection, scope, ids, replay_all: bool) -> dict:
    """The document of a replay of the named dead letters, or (replay_all) of every one there is
    now: "replayed", each one put back, done as it is read. Ctrl-C (from now on) stops it between
    two batches: Interrupted, saying how many were replayed and how many remain."""
    interrupt = Interrupt()  # Ctrl-C only sets a flag until the batch in hand is done
    held = keys.held(connection, scope, dead_letters=True)
    if not held:
        raise UserError(f"the dead-letter stream {scope.dlq_label} does not exist: nothing to replay")
    may_multi(connection, held[0].dlq)
    todo = dead_letters(connection, held) if replay_all else iter(read_dead_letters(connection, scope, ids))
    return {"key": scope.dlq_name, "replayed": replaying(connection, scope, held, todo, interrupt)}


def replaying(connection, scope, held, todo, interrupt):
    """What each dead letter put back became (replayed()), BATCH at a time."""
    done, checked = 0, set()
    while not interrupt and (batch := list(islice(todo, BATCH))):
        for (shard, target), rows in groupby(plan(batch), key=lambda row: row[:2]):
            pairs = [pair for _, _, *pair in rows]
            if target not in checked:  # a target that is not a stream would fail inside EXEC: ask first
                check_target(connection, target, shard.dlq, pairs[0][0])
                checked.add(target)
            if connection.cluster and shards.slot(target) != shards.slot(shard.dlq):
                replayed = one_by_one(connection, interrupt, shard.dlq, target, pairs)
            else:
                replayed = together(connection, shard.dlq, target, pairs)
            for one in replayed:
                done += 1
                yield one
    if interrupt:
        left = sum(connection.db.xlen(shard.dlq) for shard in held)
        raise Interrupted(
            f"interrupted: replayed {plural(done, 'dead letter')} from {scope.dlq_label}; {left} remain there "
            "(none is in both places; `admin.py dlq replay --all` replays the rest)"
        )


def render(doc: dict, *, scope):
    """A line for each dead letter replayed; on stderr, how many in all."""
    done = 0
    for one in doc["replayed"]:
        done += 1
        yield f"replayed {one['dead_letter']} (was {one['original_id']}) to {one['stream']} as {one['new_id']}"
    say(f"replayed {plural(done, 'dead letter')} from {scope.dlq_label}")


def may_multi(connection, key: str) -> None:
    """An empty transaction first: a user who may not run MULTI would otherwise have the XADDs and
    XDELs run one by one, outside any transaction (Redis refuses MULTI and runs what follows), and
    an XDEL whose XADD was refused would lose its dead letter."""
    with connection.db.pipeline(transaction=True) as tx:
        tx.xlen(key)
        try:
            tx.execute()
        except rex.NoPermissionError as exc:
            raise UserError(
                f"replay adds each dead letter back and removes it in one MULTI/EXEC, and "
                f"{connection.describe(exc, key)}; nothing was changed"
            )


def dead_letters(connection, held):
    """(shard, ID, fields) of every dead letter there is now, shard by shard, a page at a time."""
    for shard in held:
        newest = connection.db.xrevrange(shard.dlq, count=1)
        if newest:
            for entry_id, fields in read_range(connection.db, shard.dlq, "-", newest[0][0]):
                yield shard, entry_id, fields


def plan(batch):
    """(shard, target stream, ID, original fields, dlq.id, all fields) of each dead letter that
    can go back; one without original fields is said and skipped (it stays)."""
    for shard, entry_id, fields in batch:
        meta, original = split(fields)
        if not original:
            say(f"skipped {entry_id.decode()}: it has no original fields to add again")
            continue
        yield shard, meta.get("stream") or shard.key, entry_id, original, meta.get("id"), fields


def check_target(connection, target: str, key: str, first: bytes) -> None:
    kind = connection.db.type(target)
    if kind not in (b"stream", b"none"):
        raise UserError(
            f"could not add {first.decode()} back to {target}: it holds a {kind.decode()}, not a stream; "
            f"it is still in {key}"
        )


def together(connection, key: str, target: str, pairs: list):
    """XADD back and XDEL here for each, all in one MULTI/EXEC: all replayed, or none."""
    with connection.db.pipeline(transaction=True) as tx:
        for entry_id, original, _, _ in pairs:
            tx.xadd(target, original)
            tx.xdel(key, entry_id)
        try:
            replies = tx.execute(raise_on_error=False)
        except rex.RedisError as exc:  # refused as a whole (EXECABORT), or the connection went
            unknown = isinstance(exc, (rex.ConnectionError, rex.TimeoutError))
            happened = (
                "either all of them were replayed or none (one MULTI/EXEC): `admin.py dlq list` shows which"
                if unknown
                else "nothing of it changed: they are still there"
            )
            raise UserError(
                f"could not replay {plural(len(pairs), 'dead letter')} from {key} to {target}, from "
                f"{pairs[0][0].decode()} on ({connection.describe(exc, target)}); {happened}"
            )
    failed = []
    for (entry_id, _, was, fields), new_id, removed in zip(pairs, replies[::2], replies[1::2]):
        if isinstance(new_id, Exception):  # EXEC runs every command: its XDEL ran; put it back here
            again = f"; it is a dead letter again, as {connection.db.xadd(key, fields).decode()}" * (removed == 1)
            failed.append(
                f"could not add {entry_id.decode()} back to {target} ({connection.describe(new_id, target)}){again}"
            )
            continue
        yield replayed(entry_id, was, target, new_id)
    if failed:
        raise UserError(failed[0] + f" (and {len(failed) - 1} more like it)" * (len(failed) > 1))


def one_by_one(connection, interrupt, key: str, target: str, pairs: list):
    """Keys in two slots of a cluster: XADD back, then XDEL only once that succeeded; a signal
    is honoured between two pairs, never inside one."""
    db = connection.db
    for entry_id, original, was, _ in pairs:
        if interrupt:
            break
        try:
            new_id = db.xadd(target, original)
        except rex.RedisError as exc:
            maybe = (
                ", and it may have been added again (look with `admin.py range`)"
                if isinstance(exc, (rex.ConnectionError, rex.TimeoutError))
                else ""
            )
            raise UserError(
                f"could not add {entry_id.decode()} back to {target} "
                f"({connection.describe(exc, target)}); it is still in {key}{maybe}"
            )
        try:  # only now that it is safely back on its stream
            db.xdel(key, entry_id)
        except rex.RedisError as exc:
            raise UserError(
                f"added {entry_id.decode()} back to {target} as {new_id.decode()}, but could not remove it from "
                f"{key} ({connection.describe(exc, key)}); it is in both now: do not replay it again, remove it "
                f"with `admin.py dlq purge {entry_id.decode()}`"
            )
        yield replayed(entry_id, was, target, new_id)


def replayed(entry_id: bytes, was: str | None, target: str, new_id: bytes) -> dict:
    """What one replay did: the dead letter's ID, its entry's first ID, where it went back and as what."""
    return {"dead_letter": entry_id.decode(), "original_id": was, "stream": target, "new_id": new_id.decode()}
