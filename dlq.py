"""`admin.py dlq`: read the dead-letter stream, replay what failed, purge what is hopeless.

The dead-letter format (original fields + dlq.* metadata) is in dead_letters.py.
"""

from __future__ import annotations

import click
import redis.exceptions as rex

import config
from command_line import connect, dead_letter_doc, emit, entry_ids, is_stream, json_option
from dead_letters import dead_letter_key, split
from stream_info import next_id, plural, table


@click.group()
def dlq():
    """Dead letters: entries the consumers gave up on, with the reason, and putting them back.

    \b
        python admin.py dlq list
        python admin.py dlq show 1700000000000-0
        python admin.py dlq replay --all
        python admin.py dlq purge

    A consumer dead-letters an entry that is invalid or failed more than --max-deliveries times:
    it copies it to the dead-letter stream (default <stream>:dlq) with the reason, then
    acknowledges it. Fix the cause, then replay it.
    """


def dlq_options(command):
    return config.redis_options(config.dead_letter_option(command))


@dlq.command("list")
@dlq_options
@click.option(
    "--count", default=100, show_default=True, type=click.IntRange(min=1), help="Show at most this many dead letters."
)
@json_option
def dlq_list(redis_url, stream, dlq, count, as_json):
    """The dead letters, oldest first: where each came from and why it failed.

    \b
        python admin.py dlq list
    """
    redis, key = connect(redis_url), dlq or dead_letter_key(stream)
    with redis.errors(key=key):
        exists = is_stream(redis, key)
        length = redis.db.xlen(key) if exists else 0
        rows = redis.db.xrange(key, count=count + 1) if exists else []
    entries = [dead_letter_doc(i, f) for i, f in rows[:count]]
    doc = {"key": key, "length": length, "entries": entries, "more": len(rows) > count}
    lines = [f"{key}: {plural(length, 'dead letter')}"]
    if entries:
        lines += table(
            ["ID", "FROM", "GROUP/CONSUMER", "DELIVERIES", "ERROR"],
            [
                [
                    e["id"],
                    f"{e['stream']} {e['original_id']}",
                    f"{e['group']}/{e['consumer']}",
                    e["deliveries"],
                    e["error"],
                ]
                for e in entries
            ],
        )
    if doc["more"]:
        lines.append(f"  ... more not shown (raise --count above {count})")
    emit(doc, as_json, "\n".join(lines))


def read_dead_letters(redis: config.Redis, key: str, ids) -> list:
    """The dead-letter entries with these IDs; a missing one is an error before anything changes."""
    with redis.db.pipeline(transaction=False) as pipe:
        for entry_id in ids:
            pipe.xrange(key, entry_id, entry_id, count=1)
        found = pipe.execute()
    missing = [entry_id for entry_id, rows in zip(ids, found) if not rows]
    if missing:
        raise click.ClickException(
            f"no entry {', '.join(missing)} in the dead-letter stream {key} (`admin.py dlq list` shows what is there)"
        )
    return [rows[0] for rows in found]


@dlq.command("show")
@click.argument("entry_id", metavar="ID", callback=entry_ids)
@dlq_options
@json_option
def dlq_show(entry_id, redis_url, stream, dlq, as_json):
    """One dead letter in full: its original fields and everything known about its failure.

    \b
        python admin.py dlq show 1700000000000-0

    ID is the dead letter's own ID, as `dlq list` shows it.
    """
    redis, key = connect(redis_url), dlq or dead_letter_key(stream)
    with redis.errors(key=key):
        is_stream(redis, key)
        [(found_id, fields)] = read_dead_letters(redis, key, [entry_id])
    doc = dead_letter_doc(found_id, fields)
    about = [
        ["from", f"{doc['stream']}, entry {doc['original_id']}"],
        ["group", doc["group"]],
        ["consumer", doc["consumer"]],
        ["deliveries", doc["deliveries"]],
        ["time", doc["time"]],
        ["error", doc["error"]],
    ]
    lines = [
        f"dead letter {doc['id']} in {key}",
        *table(["", ""], about)[1:],
        "original fields",
        *table(["", ""], [[k, v] for k, v in doc["fields"].items()])[1:],
    ]
    emit(doc, as_json, "\n".join(lines))


@dlq.command("replay")
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=entry_ids)
@dlq_options
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter there is now.")
def dlq_replay(ids, redis_url, stream, dlq, replay_all):
    """Put dead letters back on their stream, to be processed again, and remove them here.

    \b
        python admin.py dlq replay 1700000000000-0
        python admin.py dlq replay --all

    Each is added again to the stream it came from (a new ID, its original fields, none of the
    dlq.* ones) and removed from the dead-letter stream only once that add succeeded. If the
    removal then fails, it is in both places: nothing is lost, but replaying it again would add
    it twice (`dlq purge ID` removes just that one).
    """
    if bool(ids) == replay_all:
        raise click.UsageError("name the dead letters to replay (IDs from `dlq list`) or pass --all")
    redis, key = connect(redis_url), dlq or dead_letter_key(stream)
    db, replayed = redis.db, 0
    with redis.errors(key=key):
        if not is_stream(redis, key):
            raise click.ClickException(f"the dead-letter stream {key} does not exist: nothing to replay")
        if replay_all:  # up to the newest entry now: dead letters added meanwhile wait for next time
            newest = db.xrevrange(key, count=1)
            todo = db.xrange(key, "-", newest[0][0]) if newest else []
        else:
            todo = read_dead_letters(redis, key, ids)
    for entry_id, fields in todo:
        meta, original = split(fields)
        target = meta.get("stream") or stream
        if not original:
            click.echo(f"skipped {entry_id.decode()}: it has no original fields to add again", err=True)
            continue
        try:
            new_id = db.xadd(target, original)
        except rex.RedisError as exc:
            maybe = (
                ", and it may have been added again (look with `admin.py range`)"
                if isinstance(exc, (rex.ConnectionError, rex.TimeoutError))
                else ""
            )
            raise click.ClickException(
                f"could not add {entry_id.decode()} back to {target} "
                f"({redis.describe(exc, target)}); it is still in {key}{maybe}"
            )
        try:  # only now that it is safely back on its stream
            db.xdel(key, entry_id)
        except rex.RedisError as exc:
            raise click.ClickException(
                f"added {entry_id.decode()} back to {target} as {new_id.decode()}, but could not remove it from "
                f"{key} ({redis.describe(exc, key)}); it is in both now: do not replay it again, remove it "
                f"with `admin.py dlq purge {entry_id.decode()}`"
            )
        replayed += 1
        click.echo(f"replayed {entry_id.decode()} (was {meta.get('id')}) to {target} as {new_id.decode()}")
    click.echo(f"replayed {plural(replayed, 'dead letter')} from {key}", err=True)


@dlq.command("purge")
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=entry_ids)
@dlq_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_purge(ids, redis_url, stream, dlq, yes):
    """Delete dead letters for good: the ones named, or all of them.

    \b
        python admin.py dlq purge 1700000000000-0
        python admin.py dlq purge --yes

    Without IDs it deletes every dead letter there is when it starts (one added meanwhile stays).
    It asks first unless --yes is given.
    """
    redis, key = connect(redis_url), dlq or dead_letter_key(stream)
    db = redis.db
    with redis.errors(key=key):
        if not is_stream(redis, key):
            click.echo(f"{key} does not exist: nothing to purge")
            return
        if ids:
            read_dead_letters(redis, key, ids)
            what = f"{plural(len(ids), 'dead letter')} from {key}"
        else:
            newest, length = db.xrevrange(key, count=1), db.xlen(key)
            what = f"all {plural(length, 'dead letter')} in {key}"
            if not newest:
                click.echo(f"{key} is empty: nothing to purge")
                return
        if not yes:
            click.confirm(f"delete {what} for good?", abort=True)
        # MINID just above the newest one seen: what a consumer dead-letters meanwhile stays
        removed = db.xdel(key, *ids) if ids else db.xtrim(key, minid=next_id(newest[0][0]), approximate=False)
    click.echo(f"deleted {plural(removed, 'dead letter')} from {key}")
