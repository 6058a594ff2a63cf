"""The arguments admin.py's commands check before connecting: IDs, range bounds, --json, --shard."""

from __future__ import annotations

import re

import click

from ..ids import ID

BOUND = re.compile(r"^(\(?\d+(-\d+)?|[-+])$")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (keys in the README) instead of text."
)


def entry_ids(ctx, param, value):
    """Click callback: one ID or several, each like 1700000000000-0."""
    for one in [value] if isinstance(value, str) else value or ():
        if not ID.match(one):
            raise click.BadParameter(f"{one!r} is not a stream ID (like 1700000000000-0)")
    return value


def range_bound(ctx, param, value: str) -> str:
    """Click callback: an XRANGE bound: -, +, an ID, or (ID."""
    if not BOUND.match(value):
        raise click.BadParameter(
            f"{value!r}: use - (the oldest), + (the newest), an ID like 1700000000000-0, or (ID to leave that ID out"
        )
    return value


def tail_start(value: str) -> str:
    """tail --from: $, 0 or an ID (checked after parsing, as a usage error on --from)."""
    if value not in ("$", "0") and not ID.match(value):
        raise click.BadParameter("use $, 0 or an ID like 1700000000000-0", param_hint="'--from'")
    return value


shard_option = click.option(
    "--shard",
    type=click.IntRange(min=0),
    metavar="I",
    help="Only shard I (from 0) of a sharded stream. Without it: every shard (the number is read from Redis).",
)
