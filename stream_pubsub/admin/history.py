"""`admin.py range` and `tail`: the stream's history, which pub/sub does not keep, read without a
group (XRANGE, XREAD): reading changes nothing for the consumer groups."""

from __future__ import annotations

import json

import click
import redis.exceptions as rex

from ..ids import id_text
from ..stopping import Interrupt
from .keys import is_stream
from .output import entry_doc, entry_line, plural


def show_range(connection, stream: str, start: str, end: str, *, count: int, reverse: bool, as_json: bool) -> None:
    """Print the entries between two bounds (count 0: all), oldest first unless reverse."""
    with connection.errors(key=stream):
        is_stream(connection, stream)
        limit = count + 1 if count else None
        if reverse:
            rows = connection.db.xrevrange(stream, end, start, count=limit)
        else:
            rows = connection.db.xrange(stream, start, end, count=limit)
    more = bool(count) and len(rows) > count
    rows = rows[:count] if count else rows
    if as_json:
        doc = {"stream": stream, "entries": [entry_doc(i, f) for i, f in rows], "more": more}
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


def tail(connection, stream: str, start: str, *, count: int, block: int, as_json: bool) -> None:
    """Print entries as they are added (XREAD BLOCK) until Ctrl-C, carrying on after Redis comes back."""
    interrupt = Interrupt()
    shown, last = 0, start
    try:
        with connection.errors(key=stream):
            if start == "$":  # fix "now" once: reading `$` again after each read could skip entries
                exists = is_stream(connection, stream)
                last = id_text(connection.db.xinfo_stream(stream)["last-generated-id"]) if exists else "0-0"
            click.echo(f"tail {stream}: entries after {last} (Ctrl-C to stop)", err=True)
            while not interrupt:
                try:
                    with interrupt.waiting():
                        reply = connection.db.xread({stream: last}, count=count, block=block)
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    connection.wait_until_back(interrupt, exc)  # then go on from the last entry shown
                    continue
                for _key, entries in reply:
                    for entry_id, fields in entries:
                        click.echo(json.dumps(entry_doc(entry_id, fields)) if as_json else entry_line(entry_id, fields))
                    shown += len(entries)
                    last = entries[-1][0]
    except KeyboardInterrupt:
        pass
    click.echo(f"tail stopped after {plural(shown, 'entry')}", err=True)
