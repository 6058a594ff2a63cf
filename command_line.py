"""What admin.py's commands share on the command line: options, connecting, checking keys,
printing entries, and Ctrl-C for the commands that run until stopped.
"""

from __future__ import annotations

import json
import re
import signal
from contextlib import contextmanager

import click

import config
from dead_letters import split

ID = re.compile(r"^\d+(-\d+)?$")
BOUND = re.compile(r"^(\(?\d+(-\d+)?|[-+])$")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (keys in the README) instead of text."
)


def connect(redis_url: str, *, read_timeout: float = 0.0) -> config.Redis:
    redis = config.Redis(redis_url, read_timeout=read_timeout)
    redis.check()
    return redis


def is_stream(redis: config.Redis, key: str) -> bool:
    """True if the key holds a stream, False if it does not exist; any other type is an error."""
    kind = redis.db.type(key).decode()
    if kind not in ("stream", "none"):
        raise click.ClickException(f"the key {key!r} at {redis.where} holds a {kind}, not a stream; left untouched")
    return kind == "stream"


def find_group(redis: config.Redis, stream: str, group: str) -> dict:
    if not is_stream(redis, stream):
        raise click.ClickException(
            f"no stream {stream!r} at {redis.where} (nothing was added to it; is --stream right?)"
        )
    groups = redis.db.xinfo_groups(stream)
    for found in groups:
        if found["name"].decode() == group:
            return found
    names = ", ".join(g["name"].decode() for g in groups) or "none"
    raise click.ClickException(f"no group {group!r} on stream {stream!r} (its groups: {names})")


def text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def entry_line(entry_id: bytes, fields: dict) -> str:
    return " ".join([entry_id.decode(), *(f"{text(k)}={text(v)}" for k, v in fields.items())])


def entry_doc(entry_id: bytes, fields: dict) -> dict:
    return {"id": entry_id.decode(), "fields": {text(k): text(v) for k, v in fields.items()}}


def dead_letter_doc(entry_id: bytes, fields: dict) -> dict:
    """A dead-letter entry: its metadata (see dead_letters.py) and the original fields."""
    meta, original = split(fields)
    deliveries = meta.get("deliveries")
    return {
        "id": entry_id.decode(),
        "original_id": meta.get("id"),
        "stream": meta.get("stream"),
        "group": meta.get("group"),
        "consumer": meta.get("consumer"),
        "deliveries": int(deliveries) if deliveries and deliveries.isdigit() else None,
        "error": meta.get("error"),
        "time": meta.get("time"),
        "fields": {text(k): text(v) for k, v in original.items()},
    }


def emit(doc, as_json: bool, human: str) -> None:
    click.echo(json.dumps(doc, indent=2) if as_json else human)


def entry_ids(ctx, param, value):
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


class Interrupt:
    """Ctrl-C / SIGTERM for tail and watch, which only read: stop at once while waiting for
    Redis or the next refresh; otherwise after the line in hand, so no output is cut in half."""

    def __init__(self):
        self.requested = self._waiting = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def __bool__(self):
        return self.requested

    def _handle(self, signum, frame):
        self.requested = True
        if self._waiting:
            raise KeyboardInterrupt

    @contextmanager
    def waiting(self):
        self._waiting = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        finally:
            self._waiting = False
