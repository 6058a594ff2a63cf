"""A consumer group's upkeep: creating it, noticing it is gone, reading through it, acknowledging.

Each entry of a stream is delivered to one consumer of a group. From delivery until that
consumer acknowledges it (XACK), the entry is on the group's pending list under the consumer's
name; reading with an ID instead of `>` re-reads one's own pending entries.
"""

from __future__ import annotations

import redis.exceptions as rex
from walrus.containers import ConsumerGroup

from . import shards
from .claiming import IdleClaims
from .connection import unblocked
from .ids import parse_id
from .read_ahead import AcknowledgeRefused, ReadAhead
from .replies import entries, group_info
from .telling import UserError
from .trimming import UnreadTrims


def ensure_group(db, stream: str, group: str, start_from: str) -> bool:
    """Create the group if it does not exist yet (and the stream with it). True if created.

    An existing group keeps its position: `--start-from 0` never rewinds it. (walrus's
    ConsumerGroup, as in the tutorial; it works on a cluster client too.)
    """
    cg = ConsumerGroup(db, group, {stream: start_from})
    try:
        # ensure_keys_exist=False: walrus would otherwise probe with EXISTS/TYPE and a dummy XADD;
        # MKSTREAM creates the stream in the same command instead.
        return bool(cg.create(ensure_keys_exist=False, mkstream=True)[stream])
    except rex.OutOfMemoryError:  # a full Redis refuses XGROUP CREATE even for a group it has
        if group_info(db.xinfo_groups(stream), group.encode()):  # (the consumer reads XINFO raw)
            return False
        raise


def create_groups(db, layout, group: str, start_from: str, *, explicit: bool) -> list[str]:
    """XGROUP CREATE ... MKSTREAM on each shard, once: an existing group keeps its position.

    Returns what to tell: what a new group at `$` skips, and that --start-from (`explicit`: given on
    the command line) does not move a group that exists. A sharded stream whose group exists on some
    shards, or on the unsharded key, gets the group on the other shards from their start: their
    entries are new to it.
    """
    if layout.n > 1:
        has = [has_group(db, key, group) for key, _, _ in layout]
        if not all(has) and (any(has) or has_group(db, layout.stream, group)):
            start_from = "0"
    created = [key for key, _, _ in layout if ensure_group(db, key, group, start_from)]
    told = []
    if created:
        n = (
            ""
            if layout.n == 1
            else f" ({layout.n} shards)"
            if len(created) == layout.n
            else f" ({len(created)} shards)"
        )
        skipped = sum(db.xlen(key) for key in created) if start_from == "$" else 0
        skips = (
            f": the {skipped} entries already there are skipped (--start-from 0 reads them)"
            if skipped > 1
            else ": the 1 entry already there is skipped (--start-from 0 reads it)"
            if skipped
            else ""
        )
        told.append(f"created group {group} on {layout.stream}{n}, starting at {start_from}{skips}")
    if explicit and not created:
        told.append(
            f"group {group} exists on {layout.stream} and keeps its position: --start-from only places a new group "
            f"(to move it: python admin.py group rewind {group} {start_from})"
        )
    return told


def sharded_since(connection, layout, group: str):
    """The layout of a stream read as one key that a producer has sharded since (a record of N
    shards), with the group created on each shard from its start (everything there is new to it);
    None while it is one key."""
    db = connection.db
    if layout.n > 1 or shards.recorded(db, layout.stream) in (None, 1):
        return None
    found = shards.layout(connection, layout.stream, None, dlq=layout.dlq, fanout=layout.fanout)
    for key, _, _ in found:
        ensure_group(db, key, group, "0")
    return found


def has_group(db, key: str, group: str) -> bool:
    try:
        return group_info(db.xinfo_groups(key), group.encode()) is not None  # (raw replies)
    except rex.ResponseError:  # no such key (or XINFO not allowed: then XGROUP CREATE decides)
        return False


def check_may_acknowledge(db, layout, group: str) -> None:
    """XACK of an ID that is pending nowhere, on each shard: it changes nothing, and a user who may not
    acknowledge (an ACL without +xack) learns it now, before anything is read, not after a first batch."""
    for key, _, _ in layout:
        db.xack(key, group, "0-0")


def group_lost(exc: rex.ResponseError) -> bool:
    """The group (or the whole stream) is gone: FLUSHALL, DEL, XGROUP DESTROY.

    Redis 7.0 tells a reader blocked at that moment "UNBLOCKED the stream key no longer
    exists"; every other command, and later servers, say NOGROUP. On a cluster the same words
    may mean the stream's slot moved to another master: creating the group again then finds it
    there (BUSYGROUP), and nothing is said.
    """
    text = str(exc)
    if "no such key" in text:  # XINFO of a stream (a shard) deleted or evicted meanwhile
        return True
    return text.startswith("NOGROUP") or (unblocked(exc) and "no longer exists" in text)


GROUP_LOST = (
    "GROUP LOST: {group} on {stream} no longer existed ({why}); recreated it from the start of what the "
    "stream holds now"
)


class GroupStream:
    """One stream (a shard of the logical stream) as one consumer of the group reads it.

    New entries are read one read ahead (stream_pubsub/read_ahead.py): what a half batch
    processed is acknowledged, and what its handler returned is added to the fan-out stream, in
    the round trip of the next read, in one script when there is fan-out: each entry's outputs are
    added by the XACK that removed it from the pending list, and only by it.
    """

    # consumer.py --metrics sets it: called with (this shard, the IDs, their outputs) as their XACK goes out
    acknowledging = None

    def __init__(self, connection, key: str, settings, *, dlq, fanout, say):
        self.db, self.key, self.connection, self.say = connection.db, key, connection, say
        self.group, self.consumer = settings.group, settings.name
        self.dlq, self.fanout = dlq, fanout
        # walrus's consumer group, as in the tutorial: pending entries, claiming, acknowledging
        self.entries = ConsumerGroup(self.db, self.group, [key], consumer=self.consumer).streams[key]
        self.claims = IdleClaims(self.entries, settings, where=connection.where)
        pool_of = lambda: connection.pool_for(key)  # noqa: E731 (a cluster's slot can move to another master)
        self.ahead = ReadAhead(pool_of, key, settings, fanout=fanout)
        self.trims = UnreadTrims(key, self.group)
        self.done: list[bytes] = []  # processed, not acknowledged yet
        self.outputs: dict[bytes, list[dict]] = {}  # what the handler returned for them, by entry
        self.again = False  # the next XACK holds one whose reply a lost connection took
        self.maybe_more = True  # unread entries may be waiting (its last read came back full, or a wake-up)
        self.last_delivered = b"0-0"  # the group's position after our last read

    def read_new(self, stop, limit: int):
        """(entries, how many were trimmed unread) per half batch, about `limit` entries at most.

        XREADGROUP ... > one read ahead. Process each half before asking for the next: that is when
        its XACK goes out, with the next read. Every read in flight is answered before this ends.
        """
        ahead, taken = self.ahead, 0
        if not ahead.reads_in_flight:
            self.send(read=True)
            self.send(read=True)  # the second read in flight: Redis answers it while we work
        while (found := self._said(ahead.next_read)) is not None:
            batch, info, before, after = found
            self.maybe_more = len(batch) >= ahead.half
            if after:
                self.last_delivered = after[b"last-delivered-id"]
            trimmed = self.trims.gap(info, before, after, len(batch)) if info and before else 0
            yield batch, trimmed
            taken += len(batch)
            self.send(read=self.maybe_more and taken < limit and not stop)

    def wake(self) -> None:
        """Unread entries may be waiting (a blocking read said so): read this shard at the next turn."""
        self.maybe_more = True

    def processed(self, done: list, outputs: dict) -> None:
        """These entries were processed (and these outputs made): acknowledge them with the next send."""
        self.done += done
        self.outputs.update(outputs)

    def send(self, read: bool) -> None:
        """XACK what is done (with --fanout, the script that adds the outputs), and maybe the next read."""
        done, self.done, outputs, self.outputs = self.done, [], self.outputs, {}
        again, self.again = self.again, False
        if self.acknowledging is not None and done:
            self.acknowledging(self, done, outputs)
        self._said(self.ahead.send, (done, outputs), read, again=again)

    def acknowledge(self) -> None:
        """XACK what was processed now and wait for Redis to confirm it (before blocking, or exiting)."""
        if self.done or self.outputs or self.ahead.expected:
            self.send(read=False)
            self._said(self.ahead.flush)

    def _said(self, step, *args, **kwargs):
        """Run a step of the read-ahead; say what Redis refused, and what another consumer took.

        A refused XACK ran not at all: its entries stay pending, to be claimed and processed again.
        A fan-out key that is no longer a stream refuses every XACK: that ends the consumer.
        """
        try:
            return step(*args, **kwargs)
        except AcknowledgeRefused as refused:
            why = self.connection.describe(refused.error, self.fanout)
            if "WRONGTYPE" in str(refused.error):
                raise UserError(
                    f"--fanout {self.fanout} is no longer a stream ({refused.error}): stopping; the {refused.acks} "
                    f"entries of {self.key} in hand stay pending, none acknowledged and none of their outputs added"
                ) from None
            self.say(
                f"Redis refused to acknowledge {refused.acks} entries of {self.key} ({why}); "
                "they stay pending and are processed again after --claim-idle"
            )
            return None if step == self.ahead.send else step(*args, **kwargs)  # (an XACK raises once sent)
        finally:
            if self.ahead.taken:
                taken, self.ahead.taken = self.ahead.taken, 0
                self.say(
                    f"{taken} entries of {self.key} had been acknowledged by another consumer already (it claimed "
                    "them after --claim-idle: this one was frozen or slower than that): processed twice"
                    + (", their outputs added once" if self.fanout else "")
                )

    def lost_connection(self) -> None:
        """The connection dropped, perhaps after Redis ran what was sent: was it acknowledged?

        The XACKs whose replies were not read are sent again with the next one: an XACK of an entry
        acknowledged already does nothing, and the fan-out script adds outputs only where its XACK
        removed the entry, so nothing is added twice.
        """
        ids, outputs = self.ahead.unanswered()
        self.ahead.abandon()
        self.done, self.again = ids + self.done, bool(ids) or self.again
        self.outputs.update(outputs)
        self.maybe_more = True

    def own_pending(self, stop):
        """Our own pending entries, one at a time, oldest first (raw, like `read_new`).

        These were delivered to this name before (a crash, a lost reply, a failure) and never
        acknowledged. XREADGROUP with ID 0 instead of `>` re-reads them (and ignores BLOCK); we page
        by the last ID seen. One at a time: re-reading raises an entry's delivery count, and one of
        them may be what killed us; read together, the good ones would be dead-lettered with it.
        """
        last_id = "0"
        while not stop:
            batch = entries(self.db.xreadgroup(self.group, self.consumer, {self.key: last_id}, count=1))
            if not batch:
                return
            yield batch
            last_id = batch[-1][0]

    def deliveries(self, batch) -> dict[bytes, int]:
        """How many times each entry of a re-read or claimed batch (of one) was delivered (XPENDING)."""
        first, last = batch[0][0], batch[-1][0]
        rows = self.entries.pending(start=first, stop=last, consumer=self.consumer, count=len(batch))
        return {row["message_id"]: row["times_delivered"] for row in rows}

    def claim_again(self, entry_id: bytes) -> list:
        """XCLAIM one of our pending entries to ourselves, min-idle 0: its data, with its delivery count
        raised (a retry of ours). [] if it is pending with us no more (another consumer claimed it while
        this one was frozen: it is theirs now)."""
        if not self.entries.pending(start=entry_id, stop=entry_id, consumer=self.consumer, count=1):
            return []
        return self.db.xclaim(self.key, self.group, self.consumer, 0, [entry_id])

    def in_hand(self, ids: list) -> list:
        """These entries, those processed and waiting for their XACK, and those a read ahead brought
        (taken off the wire now, so none sits there unseen): in ID order."""
        return sorted({*ids, *self.done, *self.ahead.take_in_flight()}, key=parse_id)

    def keep_fresh(self, ids: list) -> None:
        """XCLAIM <those of these still pending with us> to ourselves, min-idle 0, JUSTID: their idle
        time starts again (nobody claims them), their delivery count stays (stream_pubsub/keeping.py)."""
        rows = self.entries.pending(start=ids[0], stop=ids[-1], consumer=self.consumer, count=len(ids) + 100)
        wanted = set(ids)
        mine = [row["message_id"] for row in rows if row["message_id"] in wanted]
        if mine:
            self.db.xclaim(self.key, self.group, self.consumer, 0, mine, justid=True)

    def lag(self) -> int | None:
        """How many entries of this stream the group has not read yet (None: the server cannot tell)."""
        return self.trims.lag(group_info(self.db.xinfo_groups(self.key), self.group.encode()))

    def holds_pending(self) -> bool:
        """True while we have anything on the group's pending list of this stream."""
        return bool(self.entries.pending(consumer=self.consumer, count=1))

    def recreate(self) -> bool:
        """XGROUP CREATE ... 0 MKSTREAM: the group is gone (FLUSHALL, DEL, eviction); from the start of
        what the stream holds now. False if it was there all the same (a cluster's slot had only moved)."""
        return ensure_group(self.db, self.key, self.group, "0")

    def forget(self) -> None:
        """The group is gone: what we held means nothing now (an XACK would do nothing)."""
        self.ahead.abandon()
        self.done, self.outputs = [], {}
        self.maybe_more = True

    def group_lost_message(self, why: str | None = None) -> str:
        """`why`: what is known of the cause (eviction); else the usual suspects."""
        return GROUP_LOST.format(
            group=self.group, stream=self.key, why=why or "FLUSHALL, stream deleted or group destroyed"
        )


def group_streams(connection, layout, settings, say) -> list[GroupStream]:
    """The GroupStream of each shard of a layout."""
    return [GroupStream(connection, key, settings, dlq=dlq, fanout=fanout, say=say) for key, dlq, fanout in layout]
