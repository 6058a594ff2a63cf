"""Dead letters: where a reading goes when it can never be processed, and why.

The tutorial says a failed message stays pending "like a dead letter queue". Left there it is
retried forever and blocks nothing but hides the failure. Here, an entry that is invalid, or that
was delivered more than --max-deliveries times, is copied to a dead-letter stream
(default `<stream>:dlq`) and acknowledged in one step (a script): the copy and the XACK happen
together or not at all, so nothing is acknowledged without its copy, a crash in between cannot
write the copy twice, and an entry two consumers hold is dead-lettered by the one whose XACK
removed it from the pending list, once.

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


def dead_letter_key(stream: str) -> str:
    """The default dead-letter stream of a stream."""
    return f"{stream}:dlq"


# Dead-letter an entry only if this XACK removes it from the pending list: an entry that another
# consumer claimed and acknowledged meanwhile (this one was frozen, or slower than --claim-idle) is
# theirs, and copying it too would make two dead letters of one entry. MULTI cannot make one
# command depend on another's reply; a script can, and runs as one step. `#!lua` (Redis 7.0+):
# a full Redis refuses the script before it starts, so nothing is half done; the XLEN check keeps
# an XACK from running when the XADD could only fail (a dead-letter key that is not a stream).
DEAD_LETTER = """#!lua
-- KEYS[1] the stream, KEYS[2] the dead-letter stream; ARGV[1] the group, ARGV[2] the entry ID,
-- then the fields of the dead letter. Returns its ID, or false if the entry was not pending.
local wrong = redis.pcall('XLEN', KEYS[2])  -- WRONGTYPE unless a stream or nothing
if type(wrong) == 'table' and wrong.err then
  return wrong
end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return false
end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
"""


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
) -> bytes | None:
    """Copy one entry to the dead-letter stream and acknowledge it, atomically (one script).

    Returns the dead-letter entry's ID, or None when the entry was no longer pending (another
    consumer claimed and acknowledged it meanwhile): then nothing is written. Raises redis errors
    (OOM, WRONGTYPE, connection) with nothing written and the entry still pending.
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
    items = [part for pair in {**fields, **meta}.items() for part in pair]
    return db.eval(DEAD_LETTER, 2, stream, dlq, group, entry_id, *items)


def split(fields: dict[bytes, bytes]) -> tuple[dict[str, str], dict[bytes, bytes]]:
    """A dead-letter entry's fields as (metadata by short name, the original fields)."""
    meta = {k[len(PREFIX) :].decode(): v.decode("utf-8", "replace") for k, v in fields.items() if k.startswith(PREFIX)}
    original = {k: v for k, v in fields.items() if not k.startswith(PREFIX)}
    return meta, original
