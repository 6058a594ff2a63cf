"""What admin.py prints, in one convention: a command's module returns a document (a dict), and a
`render` function that turns it into lines of text; admin.py prints it (emit) as JSON (--json) or
as those lines. Diagnostics (hints, warnings) go to stderr as they happen (telling.say).

What can be long (range, dlq list, pending) is not read whole first: the document holds the long
list as a generator, read a page at a time while it is printed, and what only its end can tell
(`more`) as a `Later`; `json_text` writes such a document piece by piece, as json.dumps(...,
indent=2) would have written it whole. A command that goes on until Ctrl-C (tail, watch) returns a
generator of documents instead: one JSON document a line. Tables get their column widths from
their first page.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from ..ids import PAGE

CLEAR = object()  # a line of render's that means: clear the terminal first (watch, on a terminal)


class Later:
    """A value of a document known only once its long list was read (`more`): asked for once,
    after the list. `as_json` turns it into what --json shows (the text may want more than that)."""

    def __init__(self, ask: Callable[[], object], as_json: Callable[[object], object] = lambda value: value):
        self.ask, self.as_json = ask, as_json
        self.asked = False

    @property
    def value(self):
        if not self.asked:
            self._value, self.asked = self.ask(), True
        return self._value


def json_text(doc: dict) -> Iterator[str]:
    """The document as json.dumps(doc, indent=2) writes it, in pieces as they are ready: a list
    that is a generator item by item as it comes, a Later once what comes before it was written."""
    if not any(isinstance(value, (Iterator, Later)) for value in doc.values()):
        yield json.dumps(doc, indent=2) + "\n"
        return
    sep = "{"
    for name, value in doc.items():
        yield f"{sep}\n  {json.dumps(name)}: "
        sep = ","
        if isinstance(value, Iterator):
            yield from json_list(value)
        else:
            shown = value.as_json(value.value) if isinstance(value, Later) else value
            yield textwrap.indent(json.dumps(shown, indent=2), "  ").lstrip()
    yield "\n}\n"


def json_list(items: Iterator) -> Iterator[str]:
    """A list inside a document, as json.dumps(..., indent=2) writes it, item by item."""
    sep = "["
    for item in items:
        yield f"{sep}\n" + textwrap.indent(json.dumps(item, indent=2), "    ")
        sep = ","
    yield "[]" if sep == "[" else "\n  ]"


def text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def entry_doc(entry_id: bytes, fields: dict, stream: str | None = None) -> dict:
    """{id, fields}; with the stream key after the ID (`stream`) when it is one shard of several."""
    where = {"stream": stream} if stream else {}
    return {"id": entry_id.decode(), **where, "fields": {text(k): text(v) for k, v in fields.items()}}


def entry_line(doc: dict) -> str:
    """An entry's document as text: `ID field=value ...` (a shard's key after the ID)."""
    shard = [doc["stream"]] if "stream" in doc else []
    return " ".join([doc["id"], *shard, *(f"{k}={v}" for k, v in doc["fields"].items())])


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
