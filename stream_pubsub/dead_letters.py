"""Dead letters: where a reading goes when it can never be processed, and why.

The tutorial says a failed message stays pending "like a dead letter queue". Left there it is
retried forever and blocks nothing but hides the failure. Here, an entry that is invalid, or that
was delivered more than --max-deliveries times, is copied to a dead-letter stream
(default `<stream>:dlq`) and only then acknowledged, both in one MULTI/EXEC transaction: the copy
and the XACK happen together or not at all, so nothing is acknowledged without its copy and a
crash in between cannot write the copy twice.

A dead-letter entry holds the original fields unchanged, plus these (all prefixed "dlq."):
    dlq.id          the entry's ID in the source stream
    dlq.stream      the source stream
    dlq.group       the consumer group that gave up on it
    dlq.consumer    the consumer that gave up on it
    dlq.deliveries  how many times it had been delivered
    dlq.error       the last error, in words
    dlq.time        when it was dead-lettered (UTC, ISO 8601)
"""

from __future__ import annotations

from datetime import UTC, datetime

PREFIX = b"dlq."
META = ("id", "stream", "group", "consumer", "deliveries", "error", "time")


def dead_letter_key(stream: str) -> str:
    """The default dead-letter stream of a stream."""
    return f"{stream}:dlq"


def dead_letter(
    db,
    *,
    dlq: str,
    stream: str,
    group: str,
    consumer: str,
    entry_id: bytes | str,
    fields: dict,
    deliveries: int,
    error: str,
) -> bytes:
    """Copy one entry to the dead-letter stream and acknowledge it, atomically.

    Returns the dead-letter entry's ID. Raises redis errors (OOM, connection) with nothing
    written and the entry still pending, so it is retried later.
    """
    meta = {
        "dlq.id": entry_id,
        "dlq.stream": stream,
        "dlq.group": group,
        "dlq.consumer": consumer,
        "dlq.deliveries": deliveries,
        "dlq.error": error,
        "dlq.time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    with db.pipeline(transaction=True) as tx:  # MULTI ... EXEC
        tx.xadd(dlq, {**fields, **meta})
        tx.xack(stream, group, entry_id)
        new_id, _acked = tx.execute()
    return new_id


def split(fields: dict[bytes, bytes]) -> tuple[dict[str, str], dict[bytes, bytes]]:
    """A dead-letter entry's fields as (metadata by short name, the original fields)."""
    meta = {k[len(PREFIX) :].decode(): v.decode("utf-8", "replace") for k, v in fields.items() if k.startswith(PREFIX)}
    original = {k: v for k, v in fields.items() if not k.startswith(PREFIX)}
    return meta, original
