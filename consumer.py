"""Read sensor readings through a consumer group, process them, acknowledge them.

The tutorial's consumer, made safe: nothing read is lost when a consumer crashes, fails or
Redis goes away, and nothing is retried forever.
"""

from __future__ import annotations

import random
import re
import sys
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields

import click
import redis.exceptions as rex

import config
from dead_letters import dead_letter, dead_letter_key
from readings import InvalidReading, parse_reading
from stream_info import parse_id

ID_PATTERN = re.compile(r"^\d+(-\d+)?$")


class ProcessingFailed(Exception):
    """Processing failed this time; a later delivery may succeed (the entry stays pending)."""


@dataclass
class Counts:
    processed: int = 0
    failed: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    trimmed_pending: int = 0  # pending entries whose data was trimmed away: acknowledged
    trimmed_unread: int = 0  # entries trimmed from the stream before this group read them

    def summary(self) -> str:
        return ", ".join(f"{f.name.replace('_', '-')} {getattr(self, f.name)}" for f in dataclass_fields(self))


def ensure_group(db, stream: str, group: str, start_from: str) -> bool:
    """Create the group if it does not exist yet (and the stream with it). True if created.

    An existing group keeps its position: `--start-from 0` never rewinds it.
    """
    cg = db.consumer_group(group, {stream: start_from})
    # ensure_keys_exist=False: walrus would otherwise probe with EXISTS/TYPE and a dummy XADD;
    # MKSTREAM creates the stream in the same command instead.
    return bool(cg.create(ensure_keys_exist=False, mkstream=True)[stream])


def group_lost(exc: rex.ResponseError) -> bool:
    """The group (or the whole stream) is gone: FLUSHALL, DEL, XGROUP DESTROY.

    Redis 7.0 tells a reader blocked at that moment "UNBLOCKED the stream key no longer
    exists"; every other command, and later servers, say NOGROUP.
    """
    text = str(exc)
    return text.startswith("NOGROUP") or ("UNBLOCKED" in text and "no longer exists" in text)


class Consumer:
    def __init__(
        self,
        redis: config.Redis,
        *,
        stream,
        group,
        name,
        count,
        block,
        burst,
        quiet,
        claim_idle,
        max_deliveries,
        dlq,
        fail_rate,
        stats_interval,
        stop,
    ):
        self.redis, self.db = redis, redis.db
        self.stream, self.group, self.name = stream, group, name
        self.count, self.block, self.burst, self.quiet = count, block, burst, quiet
        self.claim_idle, self.max_deliveries = claim_idle, max_deliveries
        self.dlq, self.fail_rate, self.stats_interval = dlq, fail_rate, stats_interval
        self.stop = stop
        self.counts = Counts()
        self.entries = db_group(self.db, group, stream, name)
        self.last_error: dict[bytes, str] = {}  # why an entry still pending here failed
        self.unacked: list[bytes] = []  # processed, but the XACK did not get through yet
        self.counter_behind = 0  # how far Redis 7.0's entries-read lags after gaps we counted
        self.next_sweep = 0.0
        self.next_stats = time.monotonic() + stats_interval
        self.stats_mark = (time.monotonic(), 0)

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        recover = True  # on start, and after every reconnect
        while not self.stop:
            try:
                if recover:
                    # A read whose reply was lost still put entries on our pending list.
                    self.flush_acks()
                    self.recover_own_pending()
                    recover = False
                got = self.read_new()
                swept = self.sweep_if_due()
                self.report_if_due()
                if self.burst and not got and not swept and not self.stop:
                    self.flush_acks()
                    if not self.own_pending():
                        break
                    time.sleep(min(0.1, max(0.0, self.next_sweep - time.monotonic())))
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                self.redis.wait_until_back(self.stop, exc)
                recover = True
            except rex.ResponseError as exc:
                if not group_lost(exc):
                    raise
                self.recreate_group()
        self.flush_acks()

    def recover_own_pending(self) -> None:
        """Re-read and process this consumer's own pending entries (ID 0, not `>`).

        These were delivered to this name before (a crash, a lost reply, a failure) and were
        never acknowledged. Reading with an ID re-reads only our own pending entries and
        ignores BLOCK; we page through them by the last ID seen.
        """
        last_id = "0"
        while not self.stop:
            batch = self.entries.read(self.count, last_id=last_id)
            if not batch:
                return
            self.handle(batch, self.deliveries(batch))
            last_id = batch[-1][0]

    def read_new(self) -> int:
        """Block up to --block ms for entries never delivered to anyone (`>`), process them."""
        batch = self.read_counting_trims()
        if not batch and not self.burst:
            # Nothing waiting: block until something is added. A blocked reader is served
            # right after the XADD, before any later trim, so this read never skips entries.
            batch = self.entries.read(self.count, block=self.block)
        if batch:
            self.handle(batch, None)
        return len(batch)

    # -- claiming ----------------------------------------------------------------------
    def sweep_if_due(self) -> int:
        """Claim entries idle longer than --claim-idle from any consumer (a dead one, or us).

        XAUTOCLAIM scans the group's pending list from a cursor; a full sweep follows it
        until it comes back as 0-0. We sweep twice per claim-idle period, so an abandoned
        entry is taken over within about 1.5 x claim-idle.
        """
        now = time.monotonic()
        if now < self.next_sweep:
            return 0
        self.next_sweep = now + self.claim_idle / 2000
        claimed, cursor = 0, "0-0"
        while not self.stop:
            try:
                reply = self.entries.autoclaim(self.name, self.claim_idle, cursor, self.count)
            except rex.ResponseError as exc:
                if "unknown command" in str(exc).lower():
                    raise click.ClickException(
                        f"consumer.py needs Redis 6.2 or newer (XAUTOCLAIM); {self.redis.where} is older"
                    )
                raise
            cursor, batch = reply[0], reply[1]
            gone = reply[2] if len(reply) > 2 else []  # 7.0+: pending IDs whose data was trimmed
            if gone:
                self.counts.trimmed_pending += len(gone)
                self.warn(
                    f"{len(gone)} pending entries had been trimmed from the stream; dropped from the pending list"
                )
            if batch:
                claimed += len(batch)
                self.counts.claimed += len(batch)
                self.handle(batch, self.deliveries(batch))
            if cursor in (b"0-0", "0-0"):
                return claimed
        return claimed

    def deliveries(self, batch) -> dict[bytes, int]:
        """How many times each entry of a re-read or claimed batch was delivered (XPENDING)."""
        ids = [entry_id for entry_id, _ in batch]
        rows = self.entries.pending(
            start=ids[0],
            stop=ids[-1],
            consumer=self.name,
            count=len(ids) + len(self.last_error) + len(self.unacked) + 100,
        )
        return {row["message_id"]: row["times_delivered"] for row in rows}

    def own_pending(self) -> int:
        return len(self.entries.pending(consumer=self.name, count=1))

    # -- processing --------------------------------------------------------------------
    def handle(self, batch, deliveries: dict[bytes, int] | None) -> None:
        """Process a batch, print it, then queue what succeeded for one multi-ID XACK.

        The XACK goes out with the next read, in the same round trip, and always before this
        consumer blocks: each entry is acknowledged only after it was processed and its line
        was written, so a crash can redeliver at most this batch; nothing in it is lost.
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
            except ProcessingFailed as exc:
                self.counts.failed += 1
                self.last_error[entry_id] = str(exc)
                self.warn(f"failed {entry_id.decode()} (delivery {times}): {exc}; left pending for retry")
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
        self.unacked.extend(done)

    def give_up(self, entry_id: bytes, fields: dict, times: int, reason: str) -> None:
        try:
            dead_letter(
                self.db,
                dlq=self.dlq,
                stream=self.stream,
                group=self.group,
                consumer=self.name,
                entry_id=entry_id,
                fields=fields,
                deliveries=times,
                error=reason,
            )
        except rex.ResponseError as exc:  # e.g. OOM: the entry stays pending and is retried
            if group_lost(exc):
                raise
            self.last_error[entry_id] = reason
            self.warn(f"could not dead-letter {entry_id.decode()} ({self.redis.describe(exc)}); left pending")
            return
        self.last_error.pop(entry_id, None)
        self.counts.dead_lettered += 1
        self.warn(f"dead-lettered {entry_id.decode()} to {self.dlq}: {reason}")

    def flush_acks(self) -> None:
        """One multi-ID XACK for everything processed (a lost connection keeps them for later)."""
        if self.unacked:
            self.entries.ack(*self.unacked)
            self.unacked.clear()

    # -- when the stream changes under us ------------------------------------------------
    def read_counting_trims(self) -> list:
        """Read what is waiting, and count what MAXLEN/XTRIM removed before this group read it.

        One MULTI/EXEC, so nothing happens between the look and the read: the stream's info
        and the group's, the read (inside MULTI it never blocks), the group's info again.
        Entries were trimmed unread only if the group's last-delivered ID is older than the
        stream's first entry. Redis 7.2+/Valkey then move the group's entries-read counter past
        the gap (it grows by more than we read); Redis 7.0 does not, so we compute the gap from
        entries-added, XLEN and the counter, and remember that its counter now lags by that much.
        """
        acks = self.unacked[:]
        with self.db.pipeline(transaction=True) as tx:
            if acks:  # what the last batch processed, acknowledged in this same round trip
                tx.xack(self.stream, self.group, *acks)
            tx.xinfo_stream(self.stream)
            tx.xinfo_groups(self.stream)
            tx.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.count)
            tx.xinfo_groups(self.stream)
            info, before, reply, after = tx.execute(raise_on_error=False)[-4:]
        del self.unacked[: len(acks)]
        if isinstance(reply, Exception):
            raise reply
        batch = reply[0][1] if reply else []
        if isinstance(info, Exception) or isinstance(before, Exception):
            return batch
        before, after = self.my_group(before), self.my_group(after)
        first = info.get("first-entry")
        if not first or not before or parse_id(before["last-delivered-id"]) >= parse_id(first[0]):
            return batch  # no gap
        read = before.get("entries-read")
        if read is None and parse_id(before["last-delivered-id"]) == (0, 0):
            read = 0  # a group created on an empty stream has read nothing
        if read is None:
            return batch  # the server cannot tell (entries deleted with XDEL in between)
        moved = (after.get("entries-read") or 0) - read
        if moved > len(batch):
            gap = moved - len(batch)
        else:
            gap = info["entries-added"] - info["length"] - read - self.counter_behind
            self.counter_behind += max(gap, 0)
        if gap > 0:
            self.counts.trimmed_unread += gap
            self.warn(
                f"{gap} entries were trimmed from {self.stream} before group {self.group} "
                "read them (its MAXLEN is too small for this pace)"
            )
        return batch

    def my_group(self, groups: list[dict]) -> dict | None:
        return next((g for g in groups if g["name"] == self.group.encode()), None)

    def recreate_group(self) -> None:
        self.unacked.clear()  # their group is gone; an XACK would do nothing
        self.last_error.clear()
        ensure_group(self.db, self.stream, self.group, "0")
        self.warn(
            f"GROUP LOST: {self.group} on {self.stream} no longer existed (FLUSHALL, stream "
            "deleted or group destroyed); recreated it from the start of what the stream holds now"
        )

    # -- what the user sees --------------------------------------------------------------
    def warn(self, text: str) -> None:
        click.echo(f"{self.name}: {text}", err=True)

    def report_if_due(self) -> None:
        if not self.stats_interval or time.monotonic() < self.next_stats:
            return
        now = time.monotonic()
        then, before = self.stats_mark
        rate = (self.counts.processed - before) / max(now - then, 1e-9)
        self.stats_mark = (now, self.counts.processed)
        self.next_stats = now + self.stats_interval
        lag = (self.my_group(self.db.xinfo_groups(self.stream)) or {}).get("lag")
        lag = "unknown" if lag is None else max(0, lag - self.counter_behind)
        click.echo(f"{self.name}: {self.counts.summary()}, {rate:.0f}/s, group lag {lag}", err=True)


def db_group(db, group: str, stream: str, name: str):
    """The walrus consumer-group stream through which this consumer reads and acknowledges."""
    return db.consumer_group(group, [stream], consumer=name).streams[stream]


def _start_id(ctx, param, value: str) -> str:
    if value != "$" and not ID_PATTERN.match(value):
        raise click.BadParameter("use $ (only new entries), 0 (the whole history) or an ID like 1700000000000-0")
    return value


@click.command()
@click.argument("group", callback=config.not_empty)
@click.argument("consumer", callback=config.not_empty)
@config.redis_options
@click.option(
    "--start-from",
    default="$",
    show_default=True,
    callback=_start_id,
    help="Where a NEW group starts: $ = only entries added from now on, 0 = the whole "
    "history, or an ID. An existing group keeps its position.",
)
@click.option(
    "--block",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 60_000),
    help="How long one read waits for new entries, in milliseconds.",
)
@click.option(
    "--count", default=500, show_default=True, type=click.IntRange(min=1), help="Most entries per read (and per XACK)."
)
@click.option(
    "--burst",
    is_flag=True,
    help="Process what is there (own pending, claimable and new entries), then exit 0. "
    "Entries that failed are retried (after --claim-idle) until processed or "
    "dead-lettered before it exits.",
)
@click.option(
    "--claim-idle",
    default=60_000,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="CLAIM_IDLE",
    show_envvar=True,
    help="Claim pending entries idle for longer than this many milliseconds (XAUTOCLAIM).",
)
@click.option(
    "--max-deliveries",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="MAX_DELIVERIES",
    show_envvar=True,
    help="Dead-letter an entry delivered more often than this.",
)
@config.dead_letter_option
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fail this fraction of readings at random, to watch retries and dead letters.",
)
@click.option(
    "--stats-interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between status lines on stderr (0: none).",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per reading; only the summary.")
def main(
    group,
    consumer,
    redis_url,
    stream,
    start_from,
    block,
    count,
    burst,
    claim_idle,
    max_deliveries,
    dlq,
    fail_rate,
    stats_interval,
    quiet,
):
    """Read readings from the stream as CONSUMER of consumer group GROUP.

    Each entry of the stream goes to exactly one consumer of a group, so start several
    (in several terminals) to share the work:

    \b
        python consumer.py group1 c1
        python consumer.py group1 c2

    On start a consumer first processes its own pending entries (read before, never
    acknowledged), then waits for new ones. Every reading is acknowledged (XACK) only after
    it was processed. A failed one stays pending and is retried; one that is invalid or
    failed more than --max-deliveries times moves to the dead-letter stream. Entries left
    idle by a consumer that died are claimed after --claim-idle.

    Ctrl-C (or SIGTERM) finishes the batch in hand and exits; a second Ctrl-C quits at once.
    """
    stop = config.Stop()
    redis = config.Redis(redis_url, read_timeout=block / 1000)
    me = Consumer(
        redis,
        stream=stream,
        group=group,
        name=consumer,
        count=count,
        block=block,
        burst=burst,
        quiet=quiet,
        claim_idle=claim_idle,
        max_deliveries=max_deliveries,
        dlq=dlq or dead_letter_key(stream),
        fail_rate=fail_rate,
        stats_interval=stats_interval,
        stop=stop,
    )
    started = time.monotonic()
    try:
        with redis.errors(key=stream):
            redis.check()
            if ensure_group(redis.db, stream, group, start_from):
                click.echo(f"created group {group} on {stream}, starting at {start_from}", err=True)
            # An XACK of no real entry: a user without the right to acknowledge learns it now,
            # before anything is read and processed only to stay pending.
            redis.db.xack(stream, group, "0-0")
            me.run()
    except config.StopNow:
        click.echo(f"{consumer}: quit at once; unacknowledged entries stay pending ({me.counts.summary()})", err=True)
        sys.exit(130)
    elapsed = time.monotonic() - started
    click.echo(f"{consumer}: stopped after {elapsed:.1f}s: {me.counts.summary()}", err=True)


if __name__ == "__main__":
    main()
