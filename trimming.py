"""The tutorial's trimming strategy (`XTRIM app:events MAXLEN 10000` as a scheduled job), made safe.

XTRIM removes the oldest entries whether or not a consumer group has read them: an entry a group
has not been delivered yet is then never processed, and an entry delivered but not acknowledged
comes back to its consumer empty. `admin.py trim --safe` never removes either kind.

Both forms work by a cut: the ID below which entries go (MAXLEN N becomes "below the N-th newest
entry"). The trim itself is always XTRIM MINID <cut>, so entries added while we look are newer
than the cut and never removed. With --safe the cut is lowered to the oldest entry some group
still needs: the one after its last-delivered ID, or its oldest pending entry still in the stream.
Groups only move forward, so a cut that is safe when computed stays safe.
"""

from __future__ import annotations

import click

import config
from command_line import connect, entry_ids, is_stream
from stream_info import PAGE, count_entries, count_pending, id_text, next_id, parse_id, plural


def cut_for_maxlen(db, stream: str, maxlen: int, length: int) -> str | None:
    """The MINID that keeps the newest `maxlen` entries; None when there is nothing to remove."""
    if length <= maxlen:
        return None
    remove = length - maxlen
    if maxlen == 0 or remove <= maxlen:  # fewer to skip from the old end
        return next_id(nth_id(db, stream, remove, newest_first=False))
    return id_text(nth_id(db, stream, maxlen, newest_first=True))


def nth_id(db, stream: str, n: int, *, newest_first: bool) -> bytes:
    """The ID of the n-th oldest (or newest) entry, paging through the stream."""
    start = "+" if newest_first else "-"
    while True:
        if newest_first:
            page = db.xrevrange(stream, start, "-", count=min(n, PAGE))
        else:
            page = db.xrange(stream, start, "+", count=min(n, PAGE))
        if n <= len(page):
            return page[n - 1][0]
        n -= len(page)
        start = "(" + page[-1][0].decode()


def group_needs(db, stream: str, first_id: str, cut: str) -> list[dict]:
    """For each group: the oldest entry it still needs, and how many entries below the cut it
    has not read yet (unread) or read but not acknowledged (unacknowledged)."""
    needs = []
    for group in db.xinfo_groups(stream):
        name, last = group["name"].decode(), id_text(group["last-delivered-id"])
        oldest = next_id(last)  # never delivered: everything after the last-delivered ID
        pending = db.xpending_range(stream, name, first_id, "+", 1)  # pending with data still there
        if pending and parse_id(pending[0]["message_id"]) < parse_id(oldest):
            oldest = id_text(pending[0]["message_id"])
        needs.append(
            {
                "group": name,
                "oldest_needed": oldest,
                "unread": count_entries(db, stream, "(" + last, "(" + cut),
                "unacknowledged": count_pending(db, stream, name, first_id, "(" + cut),
            }
        )
    return needs


def trim_stream(db, stream: str, *, maxlen: int | None, minid: str | None, safe: bool) -> dict:
    """Trim the stream; with safe=True keep every entry some group still needs.

    Returns what happened: removed, kept (entries the plain trim would have removed but a group
    still needed; 0 without safe), left (the stream's length after), and per group what it had
    not read or acknowledged below the asked-for cut (with safe: kept; without: removed).
    """
    length = db.xlen(stream)
    first = db.xrange(stream, count=1)
    result = {"removed": 0, "kept": 0, "left": length, "needs": []}
    if not first:
        return result
    first_id = id_text(first[0][0])
    cut = minid if maxlen is None else cut_for_maxlen(db, stream, maxlen, length)
    if cut is None or parse_id(cut) <= parse_id(first_id):
        return result
    result["needs"] = [n for n in group_needs(db, stream, first_id, cut) if n["unread"] or n["unacknowledged"]]
    if safe:
        lowest = min([cut] + [n["oldest_needed"] for n in result["needs"]], key=parse_id)
        if lowest != cut:
            result["kept"] = count_entries(db, stream, lowest, "(" + cut)
            cut = lowest
    result["removed"] = db.xtrim(stream, minid=cut, approximate=False)
    result["left"] = db.xlen(stream)
    return result


@click.command()
@config.redis_options
@click.option("--maxlen", type=click.IntRange(min=0), help="Keep the newest N entries (XTRIM MAXLEN N, exact).")
@click.option("--minid", callback=entry_ids, help="Remove the entries with IDs lower than this (XTRIM MINID).")
@click.option(
    "--safe", is_flag=True, help="Keep every entry some group has not been delivered or has not acknowledged yet."
)
def trim(redis_url, stream, maxlen, minid, safe):
    """Remove the oldest entries: the tutorial's scheduled XTRIM, with --safe to lose nothing.

    \b
        python admin.py trim --maxlen 10000 --safe
        python admin.py trim --minid 1700000000000

    Plain XTRIM removes entries whether the consumer groups have read them or not. With --safe
    it keeps every entry some group has not been delivered yet or has not acknowledged, and says
    how many it kept for that reason. Without --safe it says how many such entries it removed.
    Entries added while it runs are never removed.
    """
    if (maxlen is None) == (minid is None):
        raise click.UsageError("give one of --maxlen N or --minid ID")
    redis = connect(redis_url)
    with redis.errors(key=stream):
        if not is_stream(redis, stream):
            click.echo(f"no stream {stream} at {redis.where}: nothing to trim")
            return
        done = trim_stream(redis.db, stream, maxlen=maxlen, minid=minid, safe=safe)
    click.echo(f"removed {plural(done['removed'], 'entry')} from {stream}; {done['left']} left")
    asked = f"--maxlen {maxlen}" if minid is None else f"--minid {minid}"
    if safe and done["kept"]:
        click.echo(
            f"kept {plural(done['kept'], 'entry')} that {asked} would have removed, because "
            f"{needs_text(done['needs'], 'has')}"
        )
    elif not safe and done["needs"]:
        click.echo(
            f"warning: of the entries removed, {needs_text(done['needs'], 'had')} (--safe keeps such entries)", err=True
        )


def needs_text(needs: list[dict], verb: str) -> str:
    """`group audit has not read 6; group group1 has not read 2 and not acknowledged 2`"""
    said = []
    for need in needs:
        parts = [f"read {need['unread']}"] * bool(need["unread"])
        parts += [f"acknowledged {need['unacknowledged']}"] * bool(need["unacknowledged"])
        said.append(f"group {need['group']} {verb} not {' and not '.join(parts)}")
    return "; ".join(said)
