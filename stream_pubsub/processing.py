"""Processing a batch: the handler for each entry, and what becomes of the entry.

processed (the handler returned)      queued for the batch's XACK, with what it returned
                                      for --fanout
failed (it raised)                    stays pending: delivered again after --claim-idle (or, with
                                      --retry-delays, retried by this consumer after its delay),
                                      dead-lettered once delivered over --max-deliveries
can never succeed (Unprocessable,     dead-lettered at once: copied to the dead-letter
  an invalid reading, undecodable)    stream and acknowledged in one step
"""

from __future__ import annotations

import random
import sys

import redis.exceptions as rex

from . import Unprocessable, dead_letters
from .group import group_lost
from .handler import OutputClosed
from .replies import Undecodable, as_bytes_dict, decode, undecodable
from .retrying import Retries
from .running import EXITED, FAILED, NOT_RUN, OK, UNPROCESSABLE, Item, Running, is_async
from .telling import UsageError

SIMULATED = "simulated failure (--fail-rate)"
_utf8 = bytes.decode


class HandlerMisuse(UsageError):
    """The handler returned something to publish, but there is no --fanout: a usage error."""


class Processor:
    def __init__(self, handler, settings, *, fanout: bool, counts, say, stop=None, metrics=None):
        """metrics: with --metrics, stream_pubsub/consumer_metrics.py; it times the handler (HandlerTiming)."""
        self.handler, self.group, self.consumer = handler, settings.group, settings.name
        self.timing = timing = metrics.timing(handler) if metrics else None
        self.max_deliveries, self.fail_rate, self.fanout = settings.max_deliveries, settings.fail_rate, fanout
        self.counts, self.say, self.stop = counts, say, stop
        self.last_error: dict[bytes, str] = {}  # why an entry still pending here failed
        self.exit_code: int | None = None  # the handler exited (sys.exit, out of memory): stop with this
        self.retries = Retries(settings.retry_delays)
        self.running = None  # the default (one at a time, no retries): the loop of `handle`, as fast as it gets
        if settings.concurrency > 1 or self.retries or is_async(handler):
            retrying = bool(self.retries)
            self.running = Running(
                handler if timing is None else timing.timed,
                concurrency=settings.concurrency,
                order_by=settings.order_by,
                retrying=retrying,
            )

    def handle(self, shard, batch, deliveries: dict[bytes, int] | None) -> tuple[list[bytes], dict]:
        """(IDs to acknowledge, entries to add to the fan-out stream) for a batch of one shard.

        Whatever the handler printed is flushed before this returns, so every entry is
        acknowledged only after it was processed and its line written: a crash can redeliver
        at most this batch, and nothing in it is lost.
        """
        done, outputs = [], {}
        if not batch:
            return done, outputs
        if self.running is not None:
            return self.handle_together(shard, batch, deliveries)
        handler, fail_rate, last_error, processed = self.handler, self.fail_rate, self.last_error, 0
        timing, missed = self.timing, 0  # (with --metrics: the entries the handler was not called for)
        if timing is not None:
            handler = timing.for_batch()
        for entry_id, fields in batch:
            if not fields:  # re-read or claimed after MAXLEN/XTRIM removed its data
                self.counts.trimmed_pending += 1
                done.append(entry_id)
                missed += 1
                continue
            times = deliveries.get(entry_id, 1) if deliveries else 1
            if times > self.max_deliveries:
                reason = last_error.get(entry_id, "never acknowledged (its consumer kept failing or died)")
                self.dead_letter(shard, entry_id, fields, times, f"delivered {times} times; last error: {reason}")
                missed += 1
                continue
            try:  # the fields as the handler gets them: str, decoded as UTF-8 (raw replies: a flat list)
                message = decode(fields)
            except Undecodable:  # the handler never sees it
                self.dead_letter(shard, entry_id, fields, times, f"cannot be decoded: {undecodable(fields)}")
                missed += 1
                continue
            try:
                if fail_rate and random.random() < fail_rate:
                    raise _Simulated
                result = handler(_utf8(entry_id), message)
            except Unprocessable as exc:  # retrying cannot help: dead-letter it now
                self.dead_letter(shard, entry_id, fields, times, f"{exc.reason}: {exc}")
                continue
            except MemoryError:  # the process is short of memory, not the entry at fault: stop
                self.exited(entry_id, "ran out of memory (MemoryError)", 1)
                missed += _after(batch, entry_id)
                break
            except (SystemExit, KeyboardInterrupt) as exc:  # the handler asked the process to end
                self.exited(entry_id, *_exit(exc))
                missed += _after(batch, entry_id)
                break
            except Exception as exc:  # this delivery failed; a later one may not
                simulated = isinstance(exc, _Simulated)  # (--fail-rate: the handler was not called)
                self.failed(entry_id, times, SIMULATED if simulated else f"{type(exc).__name__}: {exc}")
                missed += simulated
                continue
            if result is not None:
                try:
                    outputs[entry_id] = self.published(result)
                except TypeError as exc:
                    self.failed(entry_id, times, f"the handler returned {exc}")
                    continue
            if last_error:
                last_error.pop(entry_id, None)
            done.append(entry_id)
            processed += 1
        self._flush()
        self.counts.processed += processed
        if timing is not None:
            timing.batch_done(handler, len(batch) - missed)
        return done, outputs

    def handle_together(self, shard, batch, deliveries: dict[bytes, int] | None) -> tuple[list[bytes], dict]:
        """`handle`, with up to --concurrency entries in the handler at once, in order per --order-by
        value (stream_pubsub/running.py), and failures retried after --retry-delays (retrying.py)."""
        done, outputs, items, processed = [], {}, [], 0
        running, retries = self.running, self.retries
        for entry_id, fields in batch:
            if (message := self.usable(shard, entry_id, fields, deliveries, done)) is None:
                continue
            times, message = message
            item = Item(entry_id, fields, times, message, running.key(entry_id, message))
            if retries.holds(shard, item.key, entry_id, fields):  # its sensor waits for a retry: after it
                continue
            if self.fail_rate and random.random() < self.fail_rate:
                item.outcome, item.result = FAILED, _Simulated()
            items.append(item)
        running.run(items, self.stop)
        for item in items:  # what became of each, in stream order, said from this thread
            if item.outcome is OK:
                try:
                    if item.result is not None:
                        outputs[item.id] = self.published(item.result)
                except TypeError as exc:
                    self.failed(
                        item.id, item.times, f"the handler returned {exc}", retry=("entry", item.id), shard=shard
                    )
                    continue
                self.last_error.pop(item.id, None)
                done.append(item.id)
                processed += 1
            elif item.outcome is FAILED:
                exc = item.result
                why = SIMULATED if isinstance(exc, _Simulated) else f"{type(exc).__name__}: {exc}"
                self.failed(item.id, item.times, why, retry=item.key, shard=shard)
            elif item.outcome is UNPROCESSABLE:
                self.dead_letter(shard, item.id, item.fields, item.times, f"{item.result.reason}: {item.result}")
            elif item.outcome is EXITED:
                exc = item.result
                self.exited(
                    item.id, *(("ran out of memory (MemoryError)", 1) if isinstance(exc, MemoryError) else _exit(exc))
                )
            elif item.outcome is NOT_RUN:  # behind a failed one of its sensor, or stopped: it stays pending
                retries.holds(shard, item.key, item.id, item.fields)
        self._flush()
        self.counts.processed += processed
        return done, outputs

    def usable(self, shard, entry_id: bytes, fields, deliveries, done: list) -> tuple[int, dict] | None:
        """(deliveries, the fields decoded) of an entry the handler may see; None for one dealt with
        here: its data trimmed (acknowledged), delivered too often or undecodable (dead-lettered)."""
        if not fields:  # re-read or claimed after MAXLEN/XTRIM removed its data
            self.counts.trimmed_pending += 1
            done.append(entry_id)
            return None
        times = deliveries.get(entry_id, 1) if deliveries else 1
        if times > self.max_deliveries:
            reason = self.last_error.get(entry_id, "never acknowledged (its consumer kept failing or died)")
            self.dead_letter(shard, entry_id, fields, times, f"delivered {times} times; last error: {reason}")
            return None
        try:
            return times, decode(fields)
        except Undecodable:  # the handler never sees it
            self.dead_letter(shard, entry_id, fields, times, f"cannot be decoded: {undecodable(fields)}")
            return None

    def _flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise OutputClosed from None

    def published(self, result) -> list[dict]:
        """What the handler returned, as entries to add: a dict is one, a list of dicts several."""
        if not self.fanout:
            raise HandlerMisuse(
                f"the handler returned {type(result).__name__} {str(result)[:60]}, but there is no --fanout to add it "
                "to: pass --fanout STREAM, or return None"
            )
        entries = [result] if isinstance(result, dict) else result
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e for e in entries):
            raise TypeError(
                f"{type(result).__name__} {str(result)[:60]}; return a non-empty dict, a list of them or None"
            )
        for entry in entries:
            for name, value in entry.items():
                number = isinstance(value, (int, float)) and not isinstance(value, bool)  # True: no wire form
                if not isinstance(name, (str, bytes)) or not (number or isinstance(value, (str, bytes))):
                    raise TypeError(f"a field {name!r}: {value!r}; names and values are str, bytes or numbers")
        return entries

    def exited(self, entry_id: bytes, what: str, code: int) -> None:
        """The handler ended the process's work on this entry: stop after what is done is acknowledged."""
        self.exit_code = code
        self.say(f"the handler {what} on {entry_id.decode()}: stopping (exit {code}); that entry stays pending")

    def failed(self, entry_id: bytes, times: int, why: str, *, retry=None, shard=None) -> None:
        """Said, and counted; with --retry-delays, retried by us (its sensor `retry` waits behind it)."""
        self.counts.failed += 1
        self.last_error[entry_id] = why
        if self.retries and retry is not None:
            self.retries.wait(shard, retry, entry_id, times)
            self.say(
                f"failed {entry_id.decode()} (delivery {times}): {why}; retried in {self.retries.delay(times):.1f}s"
            )
        else:
            self.say(f"failed {entry_id.decode()} (delivery {times}): {why}; left pending for retry")

    def dead_letter(self, shard, entry_id: bytes, fields, times: int, reason: str) -> None:
        """Dead-letter an entry: XADD to the dead-letter stream and XACK here, in one step."""
        try:
            copied = dead_letters.dead_letter(
                shard.db,
                dlq=shard.dlq,
                stream=shard.key,
                group=self.group,
                consumer=self.consumer,
                entry_id=entry_id,
                fields=as_bytes_dict(fields),
                deliveries=times,
                error=reason,
            )
        except rex.ResponseError as exc:  # e.g. OOM: the entry stays pending and is retried
            if group_lost(exc):
                raise
            self.last_error[entry_id] = reason
            self.say(f"could not dead-letter {entry_id.decode()} ({shard.connection.describe(exc)}); left pending")
            return
        self.last_error.pop(entry_id, None)
        if copied is None:  # its XACK found it acknowledged: another consumer claimed it meanwhile
            self.say(f"{entry_id.decode()} was acknowledged by another consumer meanwhile: not dead-lettered here")
            return
        self.counts.dead_lettered += 1
        self.say(f"dead-lettered {entry_id.decode()} to {shard.dlq}: {reason}")


def _after(batch, entry_id: bytes) -> int:
    """How many entries of the batch come after this one."""
    return len(batch) - 1 - next(i for i, (other, _) in enumerate(batch) if other == entry_id)


def _exit(exc: BaseException) -> tuple[str, int]:
    """What the handler did, in words, and the consumer's exit code: never 0, since entries stay
    pending (a supervisor must not read it as success)."""
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt", 130
    code = exc.code
    if isinstance(code, int) and not isinstance(code, bool) and code:
        return f"called sys.exit({code})", code
    return f"called sys.exit({'' if code is None else repr(code)})", 1


class _Simulated(Exception):
    """--fail-rate: this delivery fails on purpose."""
