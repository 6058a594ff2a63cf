"""A consumer group's upkeep: creating it, noticing it is gone, reading through it, acknowledging.

Each entry of a stream is delivered to one consumer of a group. From delivery until that
consumer acknowledges it (XACK), the entry is on the group's pending list under the consumer's
name; reading with an ID instead of `>` re-reads one's own pending entries.
"""

from __future__ import annotations

import click
import redis.exceptions as rex
from walrus.containers import ConsumerGroup

from .claiming import Sweep
from .read_ahead import CommitRefused, ReadAhead
from .replies import entries, group_info
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
    return text.startswith("NOGROUP") or ("UNBLOCKED" in text and "no longer exists" in text)


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

    def __init__(
        self,
        connection,
        key: str,
        *,
        group: str,
        consumer: str,
        count: int,
        claim_idle: int,
        sweep_every: float,
        dlq,
        fanout,
        say,
    ):
        self.db, self.key, self.group, self.consumer, self.count = connection.db, key, group, consumer, count
        self.connection, self.say = connection, say
        self.dlq, self.fanout = dlq, fanout
        # walrus's consumer group, as in the tutorial: pending entries, claiming, acknowledging
        self.entries = ConsumerGroup(self.db, group, [key], consumer=consumer).streams[key]
        self.sweep = Sweep(
            self.entries, consumer, claim_idle=claim_idle, every=sweep_every, count=count, where=connection.where
        )
        pool_of = lambda: connection.pool_for(key)  # noqa: E731 (a cluster's slot can move to another master)
        self.ahead = ReadAhead(pool_of, key, group=group, consumer=consumer, count=count, fanout=fanout)
        self.trims = UnreadTrims(key, group)
        self.unacked: list[bytes] = []  # processed, not acknowledged yet
        self.outputs: dict[bytes, list[dict]] = {}  # what the handler returned for them, by entry
        self.again = False  # the next commit holds one whose reply a lost connection took
        self.maybe_more = True  # unread entries may be waiting (its last read came back full)
        self.last_delivered = b"0-0"  # the group's position after our last read

    def read_new(self, stop, limit: int):
        """(entries, how many were trimmed unread) per half batch, about `limit` entries at most.

        Process each before asking for the next: that is when its commit goes out, with the next
        read. Every read in flight is answered before this ends.
        """
        ahead, taken = self.ahead, 0
        if not ahead.reads_in_flight:
            self.send(read=True)
            self.send(read=True)  # the second read in flight: Redis answers it while we work
        while (found := self.refusals(ahead.next_read)) is not None:
            batch, info, before, after = found
            self.maybe_more = len(batch) >= ahead.half
            if after:
                self.last_delivered = after[b"last-delivered-id"]
            trimmed = self.trims.gap(info, before, after, len(batch)) if info and before else 0
            yield batch, trimmed
            taken += len(batch)
            self.send(read=self.maybe_more and taken < limit and not stop)

    def processed(self, done: list, outputs: dict) -> None:
        """These entries were processed (and these outputs made): commit them with the next send."""
        self.unacked += done
        self.outputs.update(outputs)

    def send(self, read: bool) -> None:
        commit, self.unacked, self.outputs = (self.unacked, self.outputs), [], {}
        again, self.again = self.again, False
        self.refusals(self.ahead.send, commit, read, again=again)

    def refusals(self, step, *args, **kwargs):
        """Run a step of the read-ahead; say what Redis refused, and what another consumer took.

        A refused commit ran not at all: its entries stay pending, to be claimed and processed
        again. A fan-out key that is no longer a stream refuses every commit: that ends the consumer.
        """
        try:
            return step(*args, **kwargs)
        except CommitRefused as refused:
            why = self.connection.describe(refused.error, self.fanout)
            if "WRONGTYPE" in str(refused.error):
                raise click.ClickException(
                    f"--fanout {self.fanout} is no longer a stream ({refused.error}): stopping; the {refused.acks} "
                    f"entries of {self.key} in hand stay pending, none acknowledged and none of their outputs added"
                ) from None
            self.say(
                f"Redis refused to acknowledge {refused.acks} entries of {self.key} ({why}); "
                "they stay pending and are processed again after --claim-idle"
            )
            return None if step == self.ahead.send else step(*args, **kwargs)  # (a commit raises once sent)
        finally:
            if self.ahead.taken:
                taken, self.ahead.taken = self.ahead.taken, 0
                self.say(
                    f"{taken} entries of {self.key} had been acknowledged by another consumer already (it claimed "
                    "them after --claim-idle: this one was frozen or slower than that): processed twice"
                    + (", their outputs added once" if self.fanout else "")
                )

    def commit(self) -> None:
        """Commit what was processed now and wait for Redis to confirm (before blocking, or exiting)."""
        if self.unacked or self.outputs or self.ahead.expected:
            self.send(read=False)
            self.refusals(self.ahead.flush)

    def lost_connection(self) -> None:
        """The connection dropped, perhaps after Redis ran what was sent: was it committed?

        The commits whose replies were not read are sent again with the next one: an XACK of an
        entry acknowledged already does nothing, and the fan-out script adds outputs only where
        its XACK removed the entry, so nothing is added twice.
        """
        ids, outputs = self.ahead.unanswered()
        self.ahead.abandon()
        self.unacked, self.again = ids + self.unacked, bool(ids) or self.again
        self.outputs.update(outputs)
        self.maybe_more = True

    def own_pending(self, stop):
        """Our own pending entries, one at a time, oldest first (raw, like `read`).

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

    def deliveries(self, batch, others: int = 0) -> dict[bytes, int]:
        """How many times each entry of a re-read or claimed batch was delivered (XPENDING).

        `others`: how many more of our pending entries may lie in the batch's ID range.
        """
        first, last = batch[0][0], batch[-1][0]
        rows = self.entries.pending(start=first, stop=last, consumer=self.consumer, count=len(batch) + others + 100)
        return {row["message_id"]: row["times_delivered"] for row in rows}

    def lag(self) -> int | None:
        """How many entries of this stream the group has not read yet (None: the server cannot tell)."""
        return self.trims.lag(group_info(self.db.xinfo_groups(self.key), self.group.encode()))

    def holds_pending(self) -> bool:
        """True while we have anything on the group's pending list of this stream."""
        return bool(self.entries.pending(consumer=self.consumer, count=1))

    def forget(self) -> None:
        """The group is gone: what we held means nothing now (an XACK would do nothing)."""
        self.ahead.abandon()
        self.unacked, self.outputs = [], {}
        self.maybe_more = True

    def group_lost_message(self, why: str | None = None) -> str:
        """`why`: what is known of the cause (eviction); else the usual suspects."""
        return GROUP_LOST.format(
            group=self.group, stream=self.key, why=why or "FLUSHALL, stream deleted or group destroyed"
        )
