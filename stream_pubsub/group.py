"""A consumer group's upkeep: creating it, noticing it is gone, and re-reading what is pending.

Each entry of a stream is delivered to one consumer of a group. From delivery until that
consumer acknowledges it (XACK), the entry is on the group's pending list under the consumer's
name; reading with an ID instead of `>` re-reads one's own pending entries.
"""

from __future__ import annotations

import redis.exceptions as rex


def ensure_group(db, stream: str, group: str, start_from: str) -> bool:
    """Create the group if it does not exist yet (and the stream with it). True if created.

    An existing group keeps its position: `--start-from 0` never rewinds it.
    """
    cg = db.consumer_group(group, {stream: start_from})
    # ensure_keys_exist=False: walrus would otherwise probe with EXISTS/TYPE and a dummy XADD;
    # MKSTREAM creates the stream in the same command instead.
    return bool(cg.create(ensure_keys_exist=False, mkstream=True)[stream])


def group_stream(db, group: str, stream: str, consumer: str):
    """The walrus consumer-group stream through which a consumer reads, acknowledges and claims."""
    return db.consumer_group(group, [stream], consumer=consumer).streams[stream]


def group_lost(exc: rex.ResponseError) -> bool:
    """The group (or the whole stream) is gone: FLUSHALL, DEL, XGROUP DESTROY.

    Redis 7.0 tells a reader blocked at that moment "UNBLOCKED the stream key no longer
    exists"; every other command, and later servers, say NOGROUP.
    """
    text = str(exc)
    return text.startswith("NOGROUP") or ("UNBLOCKED" in text and "no longer exists" in text)


GROUP_LOST = (
    "GROUP LOST: {group} on {stream} no longer existed (FLUSHALL, stream deleted or group destroyed); "
    "recreated it from the start of what the stream holds now"
)


def recreate_group(db, stream: str, group: str) -> str:
    """Create a lost group again at 0, so whatever the stream holds by now is read; what to say."""
    ensure_group(db, stream, group, "0")
    return GROUP_LOST.format(group=group, stream=stream)


def own_pending(entries, count: int, stop):
    """The consumer's own pending entries, a batch at a time, oldest first.

    These were delivered to this name before (a crash, a lost reply, a failure) and never
    acknowledged. XREADGROUP with ID 0 instead of `>` re-reads them (and ignores BLOCK); we page
    by the last ID seen. Each batch is processed before the next is read.
    """
    last_id = "0"
    while not stop:
        batch = entries.read(count, last_id=last_id)
        if not batch:
            return
        yield batch
        last_id = batch[-1][0]


def deliveries(entries, consumer: str, batch, others: int = 0) -> dict[bytes, int]:
    """How many times each entry of a re-read or claimed batch was delivered (XPENDING).

    `others`: how many more of the consumer's pending entries may lie in the batch's ID range.
    """
    ids = [entry_id for entry_id, _ in batch]
    rows = entries.pending(start=ids[0], stop=ids[-1], consumer=consumer, count=len(ids) + others + 100)
    return {row["message_id"]: row["times_delivered"] for row in rows}


def holds_pending(entries, consumer: str) -> bool:
    """True while the consumer has anything on the group's pending list."""
    return bool(entries.pending(consumer=consumer, count=1))


def find_group(groups: list[dict], name: str) -> dict | None:
    """One group of an XINFO GROUPS reply, by name."""
    wanted = name.encode()
    return next((g for g in groups if g["name"] == wanted), None)
