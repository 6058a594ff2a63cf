"""`admin.py trim`: the tutorial's scheduled XTRIM, saying what it removed that a group still needed
(or, with --safe, what it kept for that reason). The trimming itself is stream_pubsub/trimming.py.

A sharded stream is trimmed shard by shard, each as if it were the only one: --maxlen N keeps
the newest N entries of each shard (MAXLEN is what a producer caps each shard's XADD with), and
--minid, a time, means the same for every shard."""

from __future__ import annotations

import click

from ..trimming import trim_stream
from . import keys
from .output import plural


def trim(connection, scope, *, maxlen: int | None, minid: str | None, safe: bool) -> None:
    """Trim every shard (on a sharded stream --maxlen N keeps the newest N of each), saying each."""
    removed, left = 0, 0
    with connection.errors(key=scope.name):
        held = keys.held(connection, scope)
        if not held:
            click.echo(f"no stream {scope.label} at {connection.where}: nothing to trim")
            return
        for shard in held:
            done = trim_stream(connection.db, shard.key, maxlen=maxlen, minid=minid, safe=safe)
            removed, left = removed + done["removed"], left + done["left"]
            if not scope.sharded or not scope.whole or done["removed"] or done["kept"] or done["needs"]:
                say(shard.key, done, scope.sharded, maxlen=maxlen, minid=minid, safe=safe)
    if scope.sharded and scope.whole:  # the shards where nothing happened were not named
        click.echo(f"removed {plural(removed, 'entry')} from {scope.label} in all; {left} left")


def say(stream: str, done: dict, shard: bool, *, maxlen: int | None, minid: str | None, safe: bool) -> None:
    """What the trim of one stream key did (one shard's key: named in the warning too)."""
    click.echo(f"removed {plural(done['removed'], 'entry')} from {stream}; {done['left']} left")
    asked = f"--maxlen {maxlen}" if minid is None else f"--minid {minid}"
    if safe and done["kept"]:
        click.echo(
            f"kept {plural(done['kept'], 'entry')} that {asked} would have removed, because "
            f"{needs_text(done['needs'], 'has')}"
        )
    elif not safe and done["needs"]:
        removed = f"removed from {stream}" if shard else "removed"
        click.echo(
            f"warning: of the entries {removed}, {needs_text(done['needs'], 'had')} (--safe keeps such entries)",
            err=True,
        )


def needs_text(needs: list[dict], verb: str) -> str:
    """`group audit has not read 6; group group1 has not read 2 and not acknowledged 2`"""
    said = []
    for need in needs:
        parts = [f"read {need['unread']}"] * bool(need["unread"])
        parts += [f"acknowledged {need['unacknowledged']}"] * bool(need["unacknowledged"])
        said.append(f"group {need['group']} {verb} not {' and not '.join(parts)}")
    return "; ".join(said)
