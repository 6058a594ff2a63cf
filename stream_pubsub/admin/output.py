"""How admin.py prints: entries as text and JSON, tables, durations, counted nouns.

What can be long (range, dlq list, pending) is printed as it is read, a page at a time: a JSON
document with its one list written entry by entry (the same text json.dumps gives), a table
whose column widths come from its first page.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable
from itertools import islice

import click

from ..ids import PAGE


def text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def entry_line(entry_id: bytes, fields: dict, stream: str | None = None) -> str:
    """`ID field=value ...`; with the stream key after the ID when it is one shard of several."""
    return " ".join([entry_id.decode(), *[stream] * bool(stream), *(f"{text(k)}={text(v)}" for k, v in fields.items())])


def entry_doc(entry_id: bytes, fields: dict, stream: str | None = None) -> dict:
    """{id, fields}; with the stream key after the ID (`stream`) when it is one shard of several."""
    where = {"stream": stream} if stream else {}
    return {"id": entry_id.decode(), **where, "fields": {text(k): text(v) for k, v in fields.items()}}


def emit(doc, as_json: bool, human: str) -> None:
    click.echo(json.dumps(doc, indent=2) if as_json else human)


def table(headers: list[str], rows: list[list]) -> list[str]:
    return list(table_lines(headers, rows))


def table_lines(headers: list[str], rows: Iterable[list]):
    """The lines of a table as they come: the widths fit the first PAGE rows (a longer value
    later only pushes its row's next columns to the right)."""
    rows = iter(rows)
    first = [headers] + [[str(value) for value in row] for row in islice(rows, PAGE)]
    widths = [max(len(row[i]) for row in first) for i in range(len(headers))]
    for row in first:
        yield "  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip()
    for row in rows:  # (a row with a cell more than the headers: that cell goes at its end)
        cells = zip(row, [*widths, *[0] * (len(row) - len(widths))])
        yield "  " + "  ".join(str(value).ljust(width) for value, width in cells).rstrip()


def emit_streamed(head: dict, key: str, items: Iterable, tail: Callable[[], dict]) -> None:
    """Print `{**head, key: [*items], **tail()}` as json.dumps(..., indent=2) would, each item as
    soon as it comes; `tail()` is asked once the list is done (what only the end can tell)."""

    def member(name, value, depth: int) -> str:
        text = textwrap.indent(json.dumps(value, indent=2), "  " * depth).lstrip()
        return f"{'  ' * depth}{json.dumps(name)}: {text}"

    click.echo("{")
    for name, value in head.items():
        click.echo(member(name, value, 1) + ",")
    click.echo(f"  {json.dumps(key)}: [", nl=False)
    sep = "\n"
    for item in items:
        click.echo(sep + textwrap.indent(json.dumps(item, indent=2), "    "), nl=False)
        sep = ",\n"
    click.echo("\n  ]" if sep != "\n" else "]", nl=False)
    for name, value in tail().items():
        click.echo(",\n" + member(name, value, 1), nl=False)
    click.echo("\n}")


def duration(ms: int) -> str:
    """A time span as a person says it: 850ms, 12.3s, 4m05s, 2h10m, 3d04h."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    seconds = ms // 1000
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def plural(n: int | None, noun: str) -> str:
    if n is None:
        return f"some {noun.replace('entry', 'entries')}"
    return f"{n} {noun if n == 1 else noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def were(n: int | None) -> str:
    return "was" if n == 1 else "were"


def maybe(value) -> str:
    return "?" if value is None else str(value)
