"""See what is going on in a stream: its groups, who is behind, what is pending and what failed.

The tutorial's first argument for streams over pub/sub is "better visibility on consumers reading
messages and failed messages". This is that visibility in one command instead of four redis-cli
calls (XINFO STREAM, XINFO GROUPS, XINFO CONSUMERS, XPENDING), plus the upkeep that goes with it:
replaying dead letters, trimming safely, removing consumers that are gone.

Each command below is its options and its help; what it does is in stream_pubsub/admin/.
"""

from __future__ import annotations

import config  # isort: skip (first: a package missing outside .venv is one line, not a traceback)
import click

from stream_pubsub.admin import arguments as opt
from stream_pubsub.admin import cleanup as cleanup_
from stream_pubsub.admin import dlq as dead_letters
from stream_pubsub.admin import groups, history, replay
from stream_pubsub.admin import info as info_
from stream_pubsub.admin import metrics as metrics_
from stream_pubsub.admin import pending as pending_
from stream_pubsub.admin import trim as trim_
from stream_pubsub.admin import watch as watch_
from stream_pubsub.admin.output import emit
from stream_pubsub.admin.scope import scope
from stream_pubsub.connection import connect


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


def stream_of(redis_url: str, stream: str, shard: int | None, dlq: str | None = None):
    """(the connection, the keys the command looks at: scope.py); one line and exit 1 if Redis does not answer."""
    connection = connect(redis_url)
    return connection, scope(connection, stream, shard=shard, dlq=dlq)


# -- the whole picture ---------------------------------------------------------------------------
cap_option = config.maxlen_option(opt.CAP, "cap")
info_options = opt.options(config.redis_options, config.dead_letter_option, cap_option, *opt.info_options)


@main.command()
@info_options
def info(redis_url, stream, dlq, cap, warn_idle, as_json, shard):
    """The stream, each group and each consumer, with warnings where something is wrong.

    \b
        python admin.py info
        python admin.py info --stream app:event --json

    Shows the stream's length, first and last ID and how many entries were ever added; each
    group's consumers, pending count, last-delivered ID and lag (entries it has not read yet);
    each consumer's pending count and idle time. It warns when a group lost entries to trimming
    before reading them, when a consumer idle longer than --warn-idle still holds pending entries,
    when pending entries were trimmed away, and when the dead-letter stream is not empty.

    A sharded stream: the totals over its shards, then a row per shard with the node holding it
    (with --json: "shards", each shard's own document and its "node"). --maxlen is per shard.
    """
    connection, where = stream_of(redis_url, stream, shard, dlq)
    with connection.errors(key=stream):
        doc = info_.snapshot(connection, where, cap, warn_idle)
    emit(doc, as_json, info_.render(doc, scope=where))


@main.command()
@info_options
@opt.interval_option
def watch(redis_url, stream, dlq, cap, warn_idle, as_json, shard, interval):
    """The info view, refreshed every --interval seconds until Ctrl-C, with rates.

    \b
        python admin.py watch
        python admin.py watch --json --interval 5 >> stream-stats.jsonl

    Adds the entries added per second to the stream and, per group, the entries acknowledged per
    second, both measured between two refreshes. With --json it prints one JSON document per
    refresh, one per line (the info document plus "rates"). If Redis goes away, it says so and
    carries on when Redis is back.
    """
    connection, where = stream_of(redis_url, stream, shard, dlq)
    watch_.watch(connection, scope=where, cap=cap, warn_idle=warn_idle, as_json=as_json, interval=interval)


@main.command()
@click.argument("group", callback=config.not_empty)
@config.redis_options
@click.option("--consumer", callback=config.not_empty, help="Only the entries pending with this consumer.")
@opt.options(
    opt.min_idle_option, opt.count_option("Show at most this many entries."), opt.json_option, opt.shard_option
)
def pending(group, redis_url, stream, consumer, min_idle, count, as_json, shard):
    """The entries GROUP has delivered but nobody has acknowledged yet, oldest first.

    \b
        python admin.py pending group1
        python admin.py pending group1 --consumer c1 --min-idle 60000

    For each: the consumer holding it, how long since it was last delivered (idle), and how
    many times it was delivered. An entry that keeps coming back failed every time; one idle for
    long sits with a consumer that is stuck or gone (a running consumer claims it after its
    --claim-idle). An entry whose data was trimmed away is marked: it can only be dropped.
    On a sharded stream: the group on every shard, oldest first, each entry with its shard.
    """
    pending_.pending(
        *stream_of(redis_url, stream, shard), group, consumer=consumer, min_idle=min_idle, count=count, as_json=as_json
    )


# -- reading without a group -------------------------------------------------------------------
@main.command("range")
@click.argument("start", default="-", callback=opt.range_bound)
@click.argument("end", default="+", callback=opt.range_bound)
@config.redis_options
@opt.count_option("Show at most this many entries (0: all).", minimum=0)
@click.option("--reverse", is_flag=True, help="Newest first (XREVRANGE).")
@opt.options(opt.json_option, opt.shard_option)
def range_(start, end, redis_url, stream, count, reverse, as_json, shard):
    """The stream's history between START and END (default: all of it), oldest first.

    \b
        python admin.py range
        python admin.py range 1700000000000 + --count 10
        python admin.py range --reverse --count 5

    START and END are IDs (a bare time in milliseconds means its first or last entry), - for the
    oldest, + for the newest, or (ID to leave that ID out. This is the history that pub/sub does
    not keep; reading it changes nothing for consumer groups. A sharded stream's shards are merged
    in ID order, each entry followed by its shard's key.
    """
    connection, where = stream_of(redis_url, stream, shard)
    history.show_range(connection, where, start, end, count=count, reverse=reverse, as_json=as_json)


@main.command()
@opt.options(config.redis_options, *opt.tail_options, opt.shard_option)
def tail(redis_url, stream, start, count, block, as_json, shard):
    """Print entries as they are added (XREAD BLOCK), until Ctrl-C.

    \b
        python admin.py tail
        python admin.py tail --from 0

    Unlike a consumer group, where each entry goes to one consumer, every reader with XREAD sees
    every entry: run it in two terminals and both print everything. It keeps no position in
    Redis and acknowledges nothing. Ctrl-C stops it (exit 0). A sharded stream: every shard.
    """
    opt.tail_start(start)
    connection = connect(redis_url, read_timeout=block / 1000)
    history.tail(connection, scope(connection, stream, shard=shard), start, count=count, block=block, as_json=as_json)


# -- upkeep ------------------------------------------------------------------------------------
@main.command()
@click.argument("group", callback=config.not_empty)
@config.redis_options
@opt.idle_option
@click.option("--claim-to", callback=config.not_empty, help=opt.CLAIM_TO)
@opt.shard_option
def cleanup(group, redis_url, stream, idle, claim_to, shard):
    """Remove GROUP's consumers idle for longer than --idle ms, losing no pending entry.

    \b
        python admin.py cleanup group1 --idle 3600000
        python admin.py cleanup group1 --idle 3600000 --claim-to c1

    A consumer with nothing pending is removed. Removing one that holds pending entries would
    orphan them (XGROUP DELCONSUMER drops them unacknowledged), so such a consumer is kept,
    unless --claim-to names a running consumer (one idle for less than --idle): its pending
    entries are first claimed for that consumer (XCLAIM, their delivery counts unchanged), then
    it is removed. The new holder processes them when it restarts (it reads its own pending
    entries first), or any running consumer claims them after its --claim-idle. On a sharded
    stream each shard's group has consumers of its own: they are cleaned up shard by shard.
    """
    cleanup_.cleanup(*stream_of(redis_url, stream, shard), group, idle=idle, claim_to=claim_to)


@main.command()
@opt.options(config.redis_options, *opt.trim_options, opt.shard_option)
def trim(redis_url, stream, maxlen, minid, safe, shard):
    """Remove the oldest entries: the tutorial's scheduled XTRIM, with --safe to lose nothing.

    \b
        python admin.py trim --maxlen 10000 --safe
        python admin.py trim --minid 1700000000000

    Plain XTRIM removes entries whether the consumer groups have read them or not. With --safe
    it keeps every entry some group has not been delivered yet or has not acknowledged, and says
    how many it kept for that reason. Without --safe it says how many such entries it removed.
    Entries added while it runs are never removed. A sharded stream is trimmed shard by shard,
    each on its own: --maxlen N keeps the newest N of every shard (N x shards in all).
    """
    if (maxlen is None) == (minid is None):
        raise click.UsageError("give one of --maxlen N or --minid ID")
    trim_.trim(*stream_of(redis_url, stream, shard), maxlen=maxlen, minid=minid, safe=safe)


# -- dead letters ------------------------------------------------------------------------------
@main.group()
def dlq():
    """Dead letters: entries the consumers gave up on, with the reason, and putting them back.

    \b
        python admin.py dlq list
        python admin.py dlq show 1700000000000-0
        python admin.py dlq replay --all
        python admin.py dlq purge

    A consumer dead-letters an entry that is invalid or failed more than --max-deliveries times:
    it copies it to the dead-letter stream (default <stream>:dlq) with the reason, then
    acknowledges it. Fix the cause, then replay it. A sharded stream has dead letters per shard
    (<dead-letter>:{<shard's tag>}); every command covers them all, or --shard I's.
    """


dlq_options = opt.options(config.redis_options, config.dead_letter_option, opt.shard_option)


@dlq.command("list")
@dlq_options
@opt.count_option("Show at most this many dead letters.")
@opt.json_option
def dlq_list(redis_url, stream, dlq, shard, count, as_json):
    """The dead letters, oldest first: where each came from and why it failed.

    \b
        python admin.py dlq list
    """
    dead_letters.listing(*stream_of(redis_url, stream, shard, dlq), count, as_json)


@dlq.command("show")
@click.argument("entry_id", metavar="ID", callback=opt.entry_ids)
@dlq_options
@opt.json_option
def dlq_show(entry_id, redis_url, stream, dlq, shard, as_json):
    """One dead letter in full: its original fields and everything known about its failure.

    \b
        python admin.py dlq show 1700000000000-0

    ID is the dead letter's own ID, as `dlq list` shows it.
    """
    doc, text = dead_letters.showing(*stream_of(redis_url, stream, shard, dlq), entry_id)
    emit(doc, as_json, text)


@dlq.command("replay")
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=opt.entry_ids)
@dlq_options
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter there is now.")
def dlq_replay(ids, redis_url, stream, dlq, shard, replay_all):
    """Put dead letters back on their stream, to be processed again, and remove them here.

    \b
        python admin.py dlq replay 1700000000000-0
        python admin.py dlq replay --all

    Each is added again to the stream it came from (a new ID, its original fields, none of the
    dlq.* ones) and removed from the dead-letter stream in the same MULTI/EXEC: it is in one
    place or the other, never both, never neither. Ctrl-C stops between two batches, says how
    many were replayed and how many remain, and exits 130. (On a cluster, a dead-letter key not
    in its stream's slot cannot share a transaction: there the removal follows the add, and if it
    fails the dead letter is in both places; `dlq purge ID` removes just that one.)
    """
    if bool(ids) == replay_all:
        raise click.UsageError("name the dead letters to replay (IDs from `dlq list`) or pass --all")
    replay.replay(*stream_of(redis_url, stream, shard, dlq), ids, replay_all, say=click.echo)


@dlq.command("purge")
@click.argument("ids", nargs=-1, metavar="[ID]...", callback=opt.entry_ids)
@dlq_options
@opt.yes_option
def dlq_purge(ids, redis_url, stream, dlq, shard, yes):
    """Delete dead letters for good: the ones named, or all of them.

    \b
        python admin.py dlq purge 1700000000000-0
        python admin.py dlq purge --yes

    Without IDs it deletes every dead letter there is when it starts (one added meanwhile stays).
    It asks first unless --yes is given.
    """
    dead_letters.purge(*stream_of(redis_url, stream, shard, dlq), ids, yes)


# -- consumer groups ---------------------------------------------------------------------------
@main.group("group")
def group_():
    """Consumer groups: create one, move its position (rewind or skip), delete it, list them.

    \b
        python admin.py group list
        python admin.py group create audit --start-from 0
        python admin.py group rewind audit 0
        python admin.py group delete grup1

    consumer.py creates its group itself; these are for the rest (a group made ahead of its
    consumers, processing again, skipping a backlog). Sharded: the group of every shard.
    """


group_options = opt.options(config.redis_options, opt.shard_option)


@group_.command("list")
@group_options
@opt.json_option
def group_list(redis_url, stream, shard, as_json):
    """Every group of the stream: consumers, pending entries, position and lag.

    \b
        python admin.py group list
    """
    doc, text = groups.listing(*stream_of(redis_url, stream, shard))
    emit(doc, as_json, text)


@group_.command("create")
@click.argument("group", callback=config.not_empty)
@group_options
@opt.start_from_option
def group_create(group, redis_url, stream, shard, start_from):
    """Create GROUP (and the stream, if need be): at $ it reads only what is added from now on.

    \b
        python admin.py group create audit
        python admin.py group create audit --start-from 0

    Says how many entries it skips: all there are at $, none at 0, those up to the ID given.
    On a sharded stream it creates the group on every shard that has none yet.
    """
    click.echo(groups.create(*stream_of(redis_url, stream, shard), group, start_from))


@group_.command("rewind")
@click.argument("group", callback=config.not_empty)
@click.argument("to", callback=opt.position)
@group_options
def group_rewind(group, to, redis_url, stream, shard):
    """Move GROUP to TO (0, $ or an ID): back, to process entries again, or ahead, to skip them.

    \b
        python admin.py group rewind audit 0
        python admin.py group rewind audit 1700000000000-0

    XGROUP SETID; says how many entries that makes unread again, or skips. Entries pending with
    its consumers stay pending (each consumer re-reads its own on restart).
    """
    click.echo(groups.rewind(*stream_of(redis_url, stream, shard), group, to))


@group_.command("delete")
@click.argument("group", callback=config.not_empty)
@group_options
@opt.yes_option
def group_delete(group, redis_url, stream, shard, yes):
    """Delete GROUP, its consumers and its pending entries (XGROUP DESTROY); asks first.

    \b
        python admin.py group delete grup1
    """
    ask = None if yes else lambda question: click.confirm(question, abort=True)
    click.echo(groups.delete(*stream_of(redis_url, stream, shard), group, ask))


# -- for Prometheus (its options and help: stream_pubsub/admin/metrics.py) ----------------------
main.add_command(metrics_.command(config))


if __name__ == "__main__":
    main()
