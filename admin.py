"""See what is going on in a stream: its groups, who is behind, what is pending and what failed.

The tutorial's first argument for streams over pub/sub is "better visibility on consumers reading
messages and failed messages". This is that visibility in one command instead of four redis-cli
calls (XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS, XPENDING), plus the upkeep that goes with it:
replaying dead letters, trimming safely, removing consumers that are gone.

Each command below is its options; what it does, and its help, is in stream_pubsub/admin/: a
function there returns a document, which `emit` prints as text or --json.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click

from stream_pubsub.admin import cleanup as cleanup_
from stream_pubsub.admin import dlq as dead_letters
from stream_pubsub.admin import groups, history, output, replay
from stream_pubsub.admin import info as info_
from stream_pubsub.admin import metrics as metrics_
from stream_pubsub.admin import pending as pending_
from stream_pubsub.admin import trim as trim_
from stream_pubsub.admin import watch as watch_
from stream_pubsub.admin.scope import scope
from stream_pubsub.connection import connect
from stream_pubsub.ids import BOUND, ID, is_position


@click.group(cls=config.Group)
def main():
    """See what is going on in a stream: groups, lag, pending entries, dead letters.

    \b
        python admin.py info
        python admin.py pending group1
        python admin.py dlq list

    Every command takes --redis-url and --stream (or REDIS_URL and STREAM_KEY), like
    producer.py and consumer.py. Read commands take --json for scripts and monitoring.
    A sharded stream (--shards of producer.py and consumer.py) is shown whole, every shard
    on whichever node of a cluster holds it; --shard I narrows any command to shard I.
    """


@contextmanager
def stream_of(redis_url, stream, shard, dlq=None, *, dead_letters: bool = False, read_timeout: float = 0.0):
    """`with stream_of(...) as (connection, where):` the connection, and the keys the command looks
    at (scope.py); in it, any Redis error is one line naming the stream (or the dead-letter stream)
    and exit 1, as is a Redis that does not answer at all."""
    connection = connect(redis_url, read_timeout=read_timeout)
    where = scope(connection, stream, shard=shard, dlq=dlq)
    with connection.errors(key=where.dlq_name if dead_letters else where.name):
        yield connection, where


def emit(found, as_json: bool, render, **context) -> None:
    """Print what a command found, the one way every command prints: a document (a dict) as JSON
    or as the lines of render(found, **context); what comes one at a time until Ctrl-C (tail,
    watch: a generator of documents) as one JSON document a line. A long list inside a document
    is printed as it is read (output.py)."""
    if not as_json:
        for line in render(found, **context):
            if line is output.CLEAR:
                click.clear()  # (only on a terminal)
            else:
                click.echo(line)
    elif isinstance(found, dict):
        for piece in output.json_text(found):
            click.echo(piece, nl=False)
    else:
        for doc in found:
            click.echo(json.dumps(doc))


# -- what a person types, checked before anything connects ---------------------------------------
def entry_ids(ctx, param, value):
    """One ID or several, each like 1700000000000-0."""
    for one in [value] if isinstance(value, str) else value or ():
        if not ID.match(one):
            raise click.BadParameter(f"{one!r} is not a stream ID (like 1700000000000-0)")
    return value


def range_bound(ctx, param, value: str) -> str:
    if not BOUND.match(value):
        raise click.BadParameter(
            f"{value!r}: use - (the oldest), + (the newest), an ID like 1700000000000-0, or (ID to leave that ID out"
        )
    return value


def options(*decorators):
    """Several options as one decorator, in the order given (as they show in --help)."""

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def count_option(help: str, *, minimum: int = 1, default: int = 100):
    return click.option("--count", default=default, show_default=True, type=click.IntRange(min=minimum), help=help)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (keys in the README) instead of text."
)
shard_option = click.option(
    "--shard",
    type=click.IntRange(min=0),
    metavar="I",
    help="Only shard I (from 0) of a sharded stream. Without it: every shard (the number is read from Redis).",
)
yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
group_argument = click.argument("group", callback=config.not_empty)
info_options = options(
    config.redis_options,
    config.dead_letter_option,
    config.maxlen_option(
        "The producer's cap (its --maxlen), to show how full the stream is; Redis does not store it.", "cap"
    ),
    click.option(
        "--warn-idle",
        default=60_000,
        show_default=True,
        type=click.IntRange(min=0),
        help="Warn about a consumer idle longer than this many milliseconds that holds pending entries.",
    ),
    json_option,
    shard_option,
)


# -- the whole picture ---------------------------------------------------------------------------
@main.command(help=info_.HELP)
@info_options
def info(redis_url, stream, dlq, cap, warn_idle, as_json, shard):
    with stream_of(redis_url, stream, shard, dlq) as (connection, where):
        doc = info_.snapshot(connection, where, cap, warn_idle)
        emit(doc, as_json, info_.render, scope=where)


@main.command(help=watch_.HELP)
@info_options
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between refreshes."
)
def watch(redis_url, stream, dlq, cap, warn_idle, as_json, shard, interval):
    with stream_of(redis_url, stream, shard, dlq) as (connection, where):
        doc = watch_.refreshes(connection, scope=where, cap=cap, warn_idle=warn_idle, interval=interval)
        emit(doc, as_json, watch_.render, scope=where, interval=interval)


@main.command(help=pending_.HELP)
@group_argument
@config.redis_options
@click.option("--consumer", callback=config.not_empty, help="Only the entries pending with this consumer.")
@click.option(
    "--min-idle",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only entries not delivered again for at least this many milliseconds.",
)
@options(count_option("Show at most this many entries."), json_option, shard_option)
def pending(group, redis_url, stream, consumer, min_idle, count, as_json, shard):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = pending_.pending(connection, where, group, consumer=consumer, min_idle=min_idle, count=count)
        emit(doc, as_json, pending_.render, count=count, scope=where)


# -- reading without a group -------------------------------------------------------------------
@main.command("range", help=history.RANGE_HELP)
@click.argument("start", default="-", callback=range_bound)
@click.argument("end", default="+", callback=range_bound)
@config.redis_options
@count_option("Show at most this many entries (0: all).", minimum=0)
@click.option("--reverse", is_flag=True, help="Newest first (XREVRANGE).")
@options(json_option, shard_option)
def range_(start, end, redis_url, stream, count, reverse, as_json, shard):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = history.entries_between(connection, where, start, end, count=count, reverse=reverse)
        emit(doc, as_json, history.render_range, scope=where, start=start, end=end, reverse=reverse)


@main.command(help=history.TAIL_HELP)
@config.redis_options
@click.option(
    "--from",
    "start",
    default="$",
    show_default=True,
    help="$ = only entries added from now on, 0 = the whole history first, or an ID to start after.",
)
@count_option("Most entries per read.")
@config.block_option
@click.option("--json", "as_json", is_flag=True, help="Print each entry as one JSON document per line.")
@shard_option
def tail(redis_url, stream, start, count, block_ms, as_json, shard):
    if not is_position(start):  # (checked after parsing: a usage error on --from, before connecting)
        raise click.BadParameter("use $, 0 or an ID like 1700000000000-0", param_hint="'--from'")
    with stream_of(redis_url, stream, shard, read_timeout=block_ms / 1000) as (connection, where):
        doc = history.tail(connection, where, start, count=count, block=block_ms)
        emit(doc, as_json, history.render_tail)


# -- upkeep ------------------------------------------------------------------------------------
@main.command(help=cleanup_.HELP)
@group_argument
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
@shard_option
def cleanup(group, redis_url, stream, idle, claim_to, shard):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = cleanup_.cleanup(connection, where, group, idle=idle, claim_to=claim_to)
        emit(doc, False, cleanup_.render, scope=where)


@main.command(help=trim_.HELP)
@config.redis_options
@click.option(
    "--maxlen",
    type=click.IntRange(min=0),
    help="Keep the newest N entries (XTRIM MAXLEN N, exact); of each shard, on a sharded stream.",
)
@click.option("--minid", callback=entry_ids, help="Remove the entries with IDs lower than this (XTRIM MINID).")
@click.option(
    "--safe", is_flag=True, help="Keep every entry some group has not been delivered or has not acknowledged yet."
)
@shard_option
def trim(redis_url, stream, maxlen, minid, safe, shard):
    if (maxlen is None) == (minid is None):
        raise click.UsageError("give one of --maxlen N or --minid ID")
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = trim_.trim(connection, where, maxlen=maxlen, minid=minid, safe=safe)
        emit(doc, False, trim_.render, scope=where)


# -- dead letters ------------------------------------------------------------------------------
@main.group(help=dead_letters.HELP)
def dlq():
    pass


dlq_options = options(config.redis_options, config.dead_letter_option, shard_option)


@dlq.command("list", help=dead_letters.LIST_HELP)
@dlq_options
@count_option("Show at most this many dead letters.")
@json_option
def dlq_list(redis_url, stream, dlq, shard, count, as_json):
    with stream_of(redis_url, stream, shard, dlq, dead_letters=True) as (connection, where):
        doc = dead_letters.listing(connection, where, count)
        emit(doc, as_json, dead_letters.render_listing, count=count, scope=where)


@dlq.command("show", help=dead_letters.SHOW_HELP)
@click.argument("entry_id", metavar="ID", callback=entry_ids)
@dlq_options
@json_option
def dlq_show(entry_id, redis_url, stream, dlq, shard, as_json):
    with stream_of(redis_url, stream, shard, dlq, dead_letters=True) as (connection, where):
        doc = dead_letters.showing(connection, where, entry_id)
        emit(doc, as_json, dead_letters.render_showing, scope=where)


@dlq.command("replay", help=replay.HELP)
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=entry_ids)
@dlq_options
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter there is now.")
def dlq_replay(ids, redis_url, stream, dlq, shard, replay_all):
    if bool(ids) == replay_all:
        raise click.UsageError("name the dead letters to replay (IDs from `dlq list`) or pass --all")
    with stream_of(redis_url, stream, shard, dlq, dead_letters=True) as (connection, where):
        doc = replay.replay(connection, where, ids, replay_all)
        emit(doc, False, replay.render, scope=where)


@dlq.command("purge", help=dead_letters.PURGE_HELP)
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=entry_ids)
@dlq_options
@yes_option
def dlq_purge(ids, redis_url, stream, dlq, shard, yes):
    with stream_of(redis_url, stream, shard, dlq, dead_letters=True) as (connection, where):
        doc = dead_letters.purge(connection, where, ids, None if yes else confirm)
        emit(doc, False, dead_letters.render_purge, scope=where)


def confirm(question: str) -> None:
    """Ask; anything but yes ends the command (Aborted!, exit 1)."""
    click.confirm(question, abort=True)


# -- consumer groups ---------------------------------------------------------------------------
@main.group("group", help=groups.HELP)
def group_():
    pass


group_options = options(config.redis_options, shard_option)


@group_.command("list", help=groups.LIST_HELP)
@group_options
@json_option
def group_list(redis_url, stream, shard, as_json):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = groups.listing(connection, where)
        emit(doc, as_json, groups.render_listing, scope=where)


@group_.command("create", help=groups.CREATE_HELP)
@group_argument
@group_options
@click.option(
    "--start-from", default="$", show_default=True, callback=config.position, help="$, 0 or an ID to start after."
)
def group_create(group, redis_url, stream, shard, start_from):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = groups.create(connection, where, group, start_from)
        emit(doc, False, groups.render_create, scope=where)


@group_.command("rewind", help=groups.REWIND_HELP)
@group_argument
@click.argument("to", callback=config.position)
@group_options
def group_rewind(group, to, redis_url, stream, shard):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = groups.rewind(connection, where, group, to)
        emit(doc, False, groups.render_rewind, scope=where)


@group_.command("delete", help=groups.DELETE_HELP)
@group_argument
@group_options
@yes_option
def group_delete(group, redis_url, stream, shard, yes):
    with stream_of(redis_url, stream, shard) as (connection, where):
        doc = groups.delete(connection, where, group, None if yes else confirm)
        emit(doc, False, groups.render_delete, scope=where)


# -- for Prometheus ----------------------------------------------------------------------------
@main.command(help=metrics_.HELP)
@config.redis_url_option
@click.option(
    "--stream",
    "streams",
    multiple=True,
    envvar=config.STREAM_KEY,
    show_envvar=True,
    default=[config.DEFAULT_STREAM],
    show_default=True,
    help="A stream to cover; give it more than once for more, or a pattern ('app:*', SCAN MATCH).",
)
@config.dead_letter_option
@click.option(
    "--serve",
    metavar="ADDRESS",
    help="Serve /metrics on ADDRESS (:9103 for every interface, 127.0.0.1:9103), read at every scrape.",
)
def metrics(redis_url, streams, dlq, serve):
    if serve:
        metrics_.serve(redis_url, list(streams), dlq=dlq, address=serve)
    else:
        click.echo(metrics_.read_once(redis_url, list(streams), dlq=dlq), nl=False)


if __name__ == "__main__":
    main()
