"""See what is going on in a stream: its groups, who is behind, what is pending and what failed.

The tutorial's first argument for streams over pub/sub is "better visibility on consumers reading
messages and failed messages". This is that visibility in one command instead of four redis-cli
calls (XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS, XPENDING), plus the upkeep that goes with it:
replaying dead letters, trimming safely, removing consumers that are gone.
"""

from __future__ import annotations

import json
import sys
import time

import click
import redis.exceptions as rex

import config
import stream_info
from command_line import (
    ID,
    Interrupt,
    connect,
    emit,
    entry_doc,
    entry_line,
    find_group,
    is_stream,
    json_option,
    range_bound,
)
from dead_letters import dead_letter_key
from dlq import dlq
from stream_info import duration, id_text, plural, table
from trimming import trim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """See what is going on in a stream: groups, lag, pending entries, dead letters.

    \b
        python admin.py info
        python admin.py pending group1
        python admin.py dlq list

    Every command takes --redis-url and --stream (or REDIS_URL and STREAM_KEY), like
    producer.py and consumer.py. Read commands take --json for scripts and monitoring.
    """


# -- the whole picture ---------------------------------------------------------------------------
def info_options(command):
    for option in reversed(
        [
            config.redis_options,
            config.dead_letter_option,
            click.option(
                "--maxlen",
                "cap",
                default=None,
                type=click.IntRange(min=1),
                envvar="STREAM_MAXLEN",
                show_envvar=True,
                help="The producer's cap (its --maxlen), to show how full the stream is; Redis does not store it.",
            ),
            click.option(
                "--warn-idle",
                default=60_000,
                show_default=True,
                type=click.IntRange(min=0),
                help="Warn about a consumer idle longer than this many milliseconds that holds pending entries.",
            ),
            json_option,
        ]
    ):
        command = option(command)
    return command


def snapshot(redis: config.Redis, stream: str, dlq: str | None, cap, warn_idle) -> dict:
    dlq = dlq or dead_letter_key(stream)
    dlq_length = redis.db.xlen(dlq) if is_stream(redis, dlq) else 0
    return stream_info.gather(
        redis.db,
        stream,
        exists=is_stream(redis, stream),
        dlq=dlq,
        dlq_length=dlq_length,
        cap=cap,
        warn_idle_ms=warn_idle,
    )


@main.command()
@info_options
def info(redis_url, stream, dlq, cap, warn_idle, as_json):
    """The stream, each group and each consumer, with warnings where something is wrong.

    \b
        python admin.py info
        python admin.py info --stream app:event --json

    Shows the stream's length, first and last ID and how many entries were ever added; each
    group's consumers, pending count, last-delivered ID and lag (entries it has not read yet);
    each consumer's pending count and idle time. It warns when a group lost entries to trimming
    before reading them, when a consumer idle longer than --warn-idle still holds pending entries,
    when pending entries were trimmed away, and when the dead-letter stream is not empty.
    """
    redis = connect(redis_url)
    with redis.errors(key=stream):
        doc = snapshot(redis, stream, dlq, cap, warn_idle)
    emit(doc, as_json, stream_info.render(doc))


@main.command()
@info_options
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between refreshes."
)
def watch(redis_url, stream, dlq, cap, warn_idle, as_json, interval):
    """The info view, refreshed every --interval seconds until Ctrl-C, with rates.

    \b
        python admin.py watch
        python admin.py watch --json --interval 5 >> stream-stats.jsonl

    Adds the entries added per second to the stream and, per group, the entries acknowledged per
    second, both measured between two refreshes. With --json it prints one JSON document per
    refresh, one per line (the info document plus "rates"). If Redis goes away, it says so and
    carries on when Redis is back.
    """
    redis = connect(redis_url)
    interrupt = Interrupt()
    before = None
    try:
        with redis.errors(key=stream):
            while not interrupt:
                try:
                    doc = snapshot(redis, stream, dlq, cap, warn_idle)
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    redis.wait_until_back(interrupt, exc)  # then refresh again
                    continue
                now = time.monotonic()
                rates = (
                    stream_info.rates(before[1], doc, now - before[0])
                    if before
                    else {"seconds": None, "added_per_s": None, "acknowledged_per_s": {}}
                )
                if as_json:
                    click.echo(json.dumps({**doc, "rates": rates}))
                else:
                    if sys.stdout.isatty():
                        click.clear()
                    click.echo(f"{time.strftime('%H:%M:%S')}  every {interval:g}s, Ctrl-C to stop\n")
                    click.echo(stream_info.render(doc, rates) + "\n")
                before = (now, doc)
                with interrupt.waiting():
                    time.sleep(interval)
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("group", callback=config.not_empty)
@config.redis_options
@click.option("--consumer", callback=config.not_empty, help="Only the entries pending with this consumer.")
@click.option(
    "--min-idle",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only entries not delivered again for at least this many milliseconds.",
)
@click.option(
    "--count", default=100, show_default=True, type=click.IntRange(min=1), help="Show at most this many entries."
)
@json_option
def pending(group, redis_url, stream, consumer, min_idle, count, as_json):
    """The entries GROUP has delivered but nobody has acknowledged yet, oldest first.

    \b
        python admin.py pending group1
        python admin.py pending group1 --consumer c1 --min-idle 60000

    For each: the consumer holding it, how long since it was last delivered (idle), and how
    many times it was delivered. An entry that keeps coming back failed every time; one idle for
    long sits with a consumer that is stuck or gone (a running consumer claims it after its
    --claim-idle). An entry whose data was trimmed away is marked: it can only be dropped.
    """
    redis = connect(redis_url)
    db = redis.db
    with redis.errors(key=stream):
        find_group(redis, stream, group)
        summary = db.xpending(stream, group)
        per_consumer = {c["name"].decode(): c["pending"] for c in summary["consumers"]}
        members = [c["name"].decode() for c in db.xinfo_consumers(stream, group)]
        if consumer is not None and consumer not in members:
            raise click.ClickException(
                f"no consumer {consumer!r} in group {group!r} (its consumers: {', '.join(members) or 'none'})"
            )
        rows = db.xpending_range(stream, group, "-", "+", count + 1, consumername=consumer, idle=min_idle or None)
        more, rows = len(rows) > count, rows[:count]
        with db.pipeline(transaction=False) as pipe:  # is each entry's data still in the stream?
            for row in rows:
                pipe.xrange(stream, row["message_id"], row["message_id"], count=1)
            present = pipe.execute()
    entries = [
        {
            "id": row["message_id"].decode(),
            "consumer": row["consumer"].decode(),
            "idle_ms": row["time_since_delivered"],
            "deliveries": row["times_delivered"],
            "in_stream": bool(found),
        }
        for row, found in zip(rows, present)
    ]
    doc = {
        "stream": stream,
        "group": group,
        "pending": summary["pending"],
        "consumers": per_consumer,
        "filters": {"consumer": consumer, "min_idle_ms": min_idle},
        "entries": entries,
        "more": more,
    }

    holders = ", ".join(f"{name} {n}" for name, n in per_consumer.items())
    lines = [
        f"group {group} on {stream}: {plural(summary['pending'], 'pending entry')}"
        + (f" ({holders})" if holders else "")
    ]
    filters = [f"consumer {consumer}"] * bool(consumer) + [f"idle at least {duration(min_idle)}"] * bool(min_idle)
    if filters:
        lines.append(f"  only {', '.join(filters)}: {len(entries)}{'+' if more else ''}")
    if entries:
        gone = any(not e["in_stream"] for e in entries)
        lines += table(
            ["ID", "CONSUMER", "IDLE", "DELIVERIES"] + ["DATA"] * gone,
            [
                [e["id"], e["consumer"], duration(e["idle_ms"]), e["deliveries"]]
                + ["" if e["in_stream"] else "trimmed away"] * gone
                for e in entries
            ],
        )
    if more:
        lines.append(f"  ... more not shown (raise --count above {count})")
    emit(doc, as_json, "\n".join(lines))


# -- reading without a group -------------------------------------------------------------------
@main.command("range")
@click.argument("start", default="-", callback=range_bound)
@click.argument("end", default="+", callback=range_bound)
@config.redis_options
@click.option(
    "--count",
    default=100,
    show_default=True,
    type=click.IntRange(min=0),
    help="Show at most this many entries (0: all).",
)
@click.option("--reverse", is_flag=True, help="Newest first (XREVRANGE).")
@json_option
def range_(start, end, redis_url, stream, count, reverse, as_json):
    """The stream's history between START and END (default: all of it), oldest first.

    \b
        python admin.py range
        python admin.py range 1700000000000 + --count 10
        python admin.py range --reverse --count 5

    START and END are IDs (a bare time in milliseconds means its first or last entry), - for the
    oldest, + for the newest, or (ID to leave that ID out. This is the history that pub/sub does
    not keep; reading it changes nothing for consumer groups.
    """
    redis = connect(redis_url)
    with redis.errors(key=stream):
        is_stream(redis, stream)
        limit = count + 1 if count else None
        if reverse:
            rows = redis.db.xrevrange(stream, end, start, count=limit)
        else:
            rows = redis.db.xrange(stream, start, end, count=limit)
    more = bool(count) and len(rows) > count
    rows = rows[:count] if count else rows
    doc = {"stream": stream, "entries": [entry_doc(i, f) for i, f in rows], "more": more}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for entry_id, fields in rows:
        click.echo(entry_line(entry_id, fields))
    if not rows:
        click.echo(f"no entries in {stream} between {start} and {end}", err=True)
    elif more:
        after = f"'({rows[-1][0].decode()}'"
        hint = f"{start} {after} --reverse" if reverse else f"{after} {end}"
        click.echo(f"(more entries follow: raise --count, or go on with `admin.py range {hint}`)", err=True)


@main.command()
@config.redis_options
@click.option(
    "--from",
    "start",
    default="$",
    show_default=True,
    help="$ = only entries added from now on, 0 = the whole history first, or an ID to start after.",
)
@click.option("--count", default=100, show_default=True, type=click.IntRange(min=1), help="Most entries per read.")
@click.option(
    "--block",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 60_000),
    help="How long one read waits for new entries, in milliseconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each entry as one JSON document per line.")
def tail(redis_url, stream, start, count, block, as_json):
    """Print entries as they are added (XREAD BLOCK), until Ctrl-C.

    \b
        python admin.py tail
        python admin.py tail --from 0

    Unlike a consumer group, where each entry goes to one consumer, every reader with XREAD sees
    every entry: run it in two terminals and both print everything. It keeps no position in
    Redis and acknowledges nothing. Ctrl-C stops it (exit 0).
    """
    if start not in ("$", "0") and not ID.match(start):
        raise click.BadParameter("use $, 0 or an ID like 1700000000000-0", param_hint="'--from'")
    redis = connect(redis_url, read_timeout=block / 1000)
    interrupt = Interrupt()
    shown, last = 0, start
    try:
        with redis.errors(key=stream):
            if start == "$":  # fix "now" once: reading `$` again after each read could skip entries
                exists = is_stream(redis, stream)
                last = id_text(redis.db.xinfo_stream(stream)["last-generated-id"]) if exists else "0-0"
            click.echo(f"tail {stream}: entries after {last} (Ctrl-C to stop)", err=True)
            while not interrupt:
                try:
                    with interrupt.waiting():
                        reply = redis.db.xread({stream: last}, count=count, block=block)
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    redis.wait_until_back(interrupt, exc)  # then go on from the last entry shown
                    continue
                for _key, entries in reply:
                    for entry_id, fields in entries:
                        click.echo(json.dumps(entry_doc(entry_id, fields)) if as_json else entry_line(entry_id, fields))
                    shown += len(entries)
                    last = entries[-1][0]
    except KeyboardInterrupt:
        pass
    click.echo(f"tail stopped after {plural(shown, 'entry')}", err=True)


# -- upkeep ------------------------------------------------------------------------------------
DELETE_IF_NOTHING_PENDING = """
-- Delete the consumer only if it holds no pending entries, atomically: one that came back and
-- read something since we looked keeps it (XGROUP DELCONSUMER would drop those entries).
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


def hand_over(db, stream: str, group: str, consumer: str, to: str, min_idle: int) -> int:
    """XCLAIM a consumer's pending entries for another one. JUSTID: a handover is not a delivery,
    so the delivery counts stay as they were. Entries used again meanwhile (idle < min_idle) stay."""
    moved, start = 0, "-"
    while rows := db.xpending_range(stream, group, start, "+", 100, consumername=consumer):
        moved += len(db.xclaim(stream, group, to, min_idle, [r["message_id"] for r in rows], justid=True))
        start = "(" + rows[-1]["message_id"].decode()
    return moved


@main.command()
@click.argument("group", callback=config.not_empty)
@config.redis_options
@click.option(
    "--idle",
    required=True,
    type=click.IntRange(min=1),
    help="Remove consumers idle for longer than this many milliseconds.",
)
@click.option(
    "--claim-to",
    callback=config.not_empty,
    help="A running consumer of the group that takes over the idle consumers' pending entries.",
)
def cleanup(group, redis_url, stream, idle, claim_to):
    """Remove GROUP's consumers idle for longer than --idle ms, losing no pending entry.

    \b
        python admin.py cleanup group1 --idle 3600000
        python admin.py cleanup group1 --idle 3600000 --claim-to c1

    A consumer with nothing pending is removed. Removing one that holds pending entries would
    orphan them (XGROUP DELCONSUMER drops them unacknowledged), so such a consumer is kept,
    unless --claim-to names a running consumer (one idle for less than --idle): its pending
    entries are first claimed for that consumer (XCLAIM, their delivery counts unchanged), then
    it is removed. The new holder processes them when it restarts (it reads its own pending
    entries first), or any running consumer claims them after its --claim-idle.
    """
    redis = connect(redis_url)
    db, removed, kept = redis.db, 0, 0
    with redis.errors(key=stream):
        find_group(redis, stream, group)
        members = {c["name"].decode(): c for c in db.xinfo_consumers(stream, group)}
        if claim_to is not None:
            if claim_to not in members:
                raise click.ClickException(
                    f"--claim-to {claim_to}: no such consumer in group {group} "
                    f"(its consumers: {', '.join(members) or 'none'})"
                )
            if members[claim_to]["idle"] > idle:
                raise click.ClickException(
                    f"--claim-to {claim_to}: it has been idle for "
                    f"{duration(members[claim_to]['idle'])}; name a running consumer"
                )
        delete = db.register_script(DELETE_IF_NOTHING_PENDING)
        for name, member in members.items():
            if member["idle"] <= idle or name == claim_to:
                continue
            held, how = member["pending"], f"idle {duration(member['idle'])}"
            if held and claim_to is None:
                kept += 1
                click.echo(
                    f"kept {name} ({how}): it holds {plural(held, 'pending entry')}; "
                    "--claim-to <a running consumer> hands them over first"
                )
                continue
            moved = hand_over(db, stream, group, name, claim_to, idle) if held else 0
            if delete(keys=[stream], args=[group, name]) == -1:
                kept += 1
                click.echo(f"kept {name} ({how}): it is using its pending entries again")
                continue
            removed += 1
            handed = f"its {plural(moved, 'pending entry')} handed to {claim_to} first" if held else "nothing pending"
            click.echo(f"removed {name} ({how}, {handed})")
    active = len(members) - removed - kept
    click.echo(f"group {group}: removed {plural(removed, 'consumer')}, kept {kept}; {active} active left alone")


main.add_command(dlq)
main.add_command(trim)

if __name__ == "__main__":
    main()
