"""Checking what a key holds before a command reads it: a stream, nothing, or a mistake."""

from __future__ import annotations

import click


def is_stream(connection, key: str) -> bool:
    """True if the key holds a stream, False if it does not exist; any other type is an error."""
    kind = connection.db.type(key).decode()
    if kind not in ("stream", "none"):
        raise click.ClickException(
            f"the key {key!r} at {connection.where} holds a {kind}, not a stream; left untouched"
        )
    return kind == "stream"


def require_group(connection, stream: str, group: str) -> dict:
    """The group's XINFO GROUPS row; a missing stream or group is one line naming what exists."""
    if not is_stream(connection, stream):
        raise click.ClickException(
            f"no stream {stream!r} at {connection.where} (nothing was added to it; is --stream right?)"
        )
    groups = connection.db.xinfo_groups(stream)
    for found in groups:
        if found["name"].decode() == group:
            return found
    names = ", ".join(g["name"].decode() for g in groups) or "none"
    raise click.ClickException(f"no group {group!r} on stream {stream!r} (its groups: {names})")
