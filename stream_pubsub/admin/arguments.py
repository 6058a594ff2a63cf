"""The arguments admin.py's commands check before connecting: IDs, range bounds, --json, --shard."""

from __future__ import annotations

import click

from ..ids import BOUND, ID, is_position

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
    if not is_position(value):
        raise click.BadParameter("use $, 0 or an ID like 1700000000000-0", param_hint="'--from'")
    return value


shard_option = click.option(
    "--shard",
    type=click.IntRange(min=0),
    metavar="I",
    help="Only shard I (from 0) of a sharded stream. Without it: every shard (the number is read from Redis).",
)


def position(ctx, param, value: str) -> str:
    """Click callback: a group's position: $ (the end), 0 (the start) or an ID."""
    if not is_position(value):
        raise click.BadParameter(f"{value!r}: use $ (the end), 0 (the start) or an ID like 1700000000000-0")
    return value


# -- options of one command or two (the ones every script shares are in config.py) --------------
def count_option(help: str, *, minimum: int = 1, default: int = 100):
    return click.option("--count", default=default, show_default=True, type=click.IntRange(min=minimum), help=help)


CAP = "The producer's cap (its --maxlen), to show how full the stream is; Redis does not store it."
CLAIM_TO = "A running consumer of the group that takes over the idle consumers' pending entries."
yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
warn_idle_option = click.option(
    "--warn-idle",
    default=60_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Warn about a consumer idle longer than this many milliseconds that holds pending entries.",
)
info_options = [warn_idle_option, json_option, shard_option]  # after --redis-url, --stream, --dead-letter, --maxlen
interval_option = click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between refreshes."
)
min_idle_option = click.option(
    "--min-idle",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Only entries not delivered again for at least this many milliseconds.",
)
tail_options = [
    click.option(
        "--from",
        "start",
        default="$",
        show_default=True,
        help="$ = only entries added from now on, 0 = the whole history first, or an ID to start after.",
    ),
    count_option("Most entries per read."),
    click.option(
        "--block",
        default=2000,
        show_default=True,
        type=click.IntRange(1, 60_000),
        help="How long one read waits for new entries, in milliseconds.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print each entry as one JSON document per line."),
]
trim_options = [
    click.option(
        "--maxlen",
        type=click.IntRange(min=0),
        help="Keep the newest N entries (XTRIM MAXLEN N, exact); of each shard, on a sharded stream.",
    ),
    click.option("--minid", callback=entry_ids, help="Remove the entries with IDs lower than this (XTRIM MINID)."),
    click.option(
        "--safe", is_flag=True, help="Keep every entry some group has not been delivered or has not acknowledged yet."
    ),
]
idle_option = click.option(
    "--idle",
    required=True,
    type=click.IntRange(min=1),
    help="Remove consumers idle for longer than this many milliseconds.",
)
start_from_option = click.option(
    "--start-from", default="$", show_default=True, callback=position, help="$, 0 or an ID to start after."
)


def options(*decorators):
    """Several options as one decorator, in the order given (as they show in --help)."""

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply
