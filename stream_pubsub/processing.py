"""Processing a batch: the tutorial's `process_message` for each entry, and what becomes of it.

An entry that was processed is queued for the batch's XACK. One that failed stays pending: it is
delivered again after --claim-idle, and dead-lettered once delivered more than --max-deliveries
times. One that can never be processed (an invalid reading) is dead-lettered at once.
"""

from __future__ import annotations

import random
import sys

import redis.exceptions as rex

from .dead_letters import dead_letter
from .group import group_lost
from .reading import InvalidReading, parse_reading


class ProcessingFailed(Exception):
    """Processing failed this time; a later delivery may succeed (the entry stays pending)."""


class Processor:
    def __init__(self, db, *, stream, group, consumer, dlq, max_deliveries, fail_rate, quiet, counts, say, describe):
        self.db, self.stream, self.group, self.consumer, self.dlq = db, stream, group, consumer, dlq
        self.max_deliveries, self.fail_rate, self.quiet = max_deliveries, fail_rate, quiet
        self.counts, self.say, self.describe = counts, say, describe
        self.last_error: dict[bytes, str] = {}  # why an entry still pending here failed

    def handle(self, batch, deliveries: dict[bytes, int] | None) -> list[bytes]:
        """Process a batch and print it; the IDs to acknowledge (processed, or dead-lettered data-less).

        Each entry is acknowledged only after it was processed and its line was written, so a
        crash can redeliver at most this batch; nothing in it is lost.
        """
        done, lines, processed = [], [], 0
        for entry_id, fields in batch:
            if not fields:  # re-read or claimed after MAXLEN/XTRIM removed its data
                self.counts.trimmed_pending += 1
                done.append(entry_id)
                continue
            times = deliveries.get(entry_id, 1) if deliveries else 1
            if times > self.max_deliveries:
                reason = self.last_error.get(entry_id, "never acknowledged (its consumer kept failing or died)")
                self.give_up(entry_id, fields, times, f"delivered {times} times; last error: {reason}")
                continue
            try:
                sensor_id, temp, humidity = parse_reading(fields)
                if self.fail_rate and random.random() < self.fail_rate:
                    raise ProcessingFailed("simulated failure (--fail-rate)")
            except InvalidReading as exc:  # retrying cannot help: dead-letter it now
                self.give_up(entry_id, fields, times, f"invalid reading: {exc}")
                continue
            except ProcessingFailed as exc:  # stays pending: delivered again after --claim-idle
                self.counts.failed += 1
                self.last_error[entry_id] = str(exc)
                self.say(f"failed {entry_id.decode()} (delivery {times}): {exc}; left pending for retry")
                continue
            if self.last_error:
                self.last_error.pop(entry_id, None)
            done.append(entry_id)
            processed += 1
            if not self.quiet:
                lines.append(f"{entry_id.decode()} {sensor_id} temp={temp:.4f} humidity={humidity:.4f}\n")
        if lines:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
        self.counts.processed += processed
        return done

    def give_up(self, entry_id: bytes, fields: dict, times: int, reason: str) -> None:
        """Dead-letter an entry: XADD to the dead-letter stream and XACK here, in one MULTI/EXEC."""
        try:
            dead_letter(
                self.db,
                dlq=self.dlq,
                stream=self.stream,
                group=self.group,
                consumer=self.consumer,
                entry_id=entry_id,
                fields=fields,
                deliveries=times,
                error=reason,
            )
        except rex.ResponseError as exc:  # e.g. OOM: the entry stays pending and is retried
            if group_lost(exc):
                raise
            self.last_error[entry_id] = reason
            self.say(f"could not dead-letter {entry_id.decode()} ({self.describe(exc)}); left pending")
            return
        self.last_error.pop(entry_id, None)
        self.counts.dead_lettered += 1
        self.say(f"dead-lettered {entry_id.decode()} to {self.dlq}: {reason}")
