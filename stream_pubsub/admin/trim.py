"""`admin.py trim`: the tutorial's scheduled XTRIM, saying what it removed that a group still needed
(or, with --safe, what it kept for that reason). The trimming itself is stream_pubsub/trimming.py."""

from __future__ import annotations

import click

from ..trimming import trim_stream
from .keys import is_stream
from .output import plural


def trim(connection, stream: str, *, maxlen: int | None, minid: str | None, safe: bool) -> None:
    with connection.errors(key=stream):
        if not is_stream(connection, stream):
            click.echo(f"no stream {stream} at {connection.where}: nothing to trim")
            return
        done = trim_stream(connection.db, stream, maxlen=maxlen, minid=minid, safe=safe)
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
