"""How admin.py prints: entries as text and JSON, tables, durations, counted nouns."""

from __future__ import annotations

import json

import click


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
    cells = [headers] + [[str(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]


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
