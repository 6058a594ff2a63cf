"""What producer.py, consumer.py and admin.py share: the defaults, the environment variables a
deployment sets, and the command-line options every script takes.

    --redis-url   / REDIS_URL        where Redis is (redis://, rediss:// for TLS, passwords allowed)
    --stream      / STREAM_KEY       the stream, the tutorial's "topic"
    --dead-letter / DEAD_LETTER_KEY  where failed readings go (consumer, admin)

Connecting, reconnecting and the wording of errors are in stream_pubsub/connection.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

try:  # what the scripts need; each imports this module first, so that a missing one is a line, not a traceback
    import click
    import hiredis  # noqa: F401
    import walrus  # noqa: F401  (and redis, which it imports)
except ModuleNotFoundError as missing:  # e.g. in a new terminal, where .venv is not active
    sys.exit(
        f"Error: the package {(missing.name or '?').partition('.')[0]!r} is not installed for {sys.executable}: "
        "activate the virtual environment first (`. .venv/bin/activate`), or run `make demo`, which creates it"
    )

from stream_pubsub.ids import is_position  # noqa: E402  (after the check above)
from stream_pubsub.telling import Interrupted, UserError  # noqa: E402

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "app:event"  # the tutorial's key

# The environment variables, by the option they stand for.
REDIS_URL = "REDIS_URL"
STREAM_KEY = "STREAM_KEY"
DEAD_LETTER_KEY = "DEAD_LETTER_KEY"
STREAM_MAXLEN = "STREAM_MAXLEN"
CLAIM_IDLE = "CLAIM_IDLE"
MAX_DELIVERIES = "MAX_DELIVERIES"
STREAM_SHARDS = "STREAM_SHARDS"
HANDLER = "HANDLER"
METRICS_ADDRESS = "METRICS_ADDRESS"
ENVIRONMENT = (
    REDIS_URL,
    STREAM_KEY,
    DEAD_LETTER_KEY,
    STREAM_MAXLEN,
    CLAIM_IDLE,
    MAX_DELIVERIES,
    STREAM_SHARDS,
    HANDLER,
    METRICS_ADDRESS,
)


def without_settings(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment without any of the variables above: a script started with it (by the demo,
    the benchmark or a test) takes only the settings it is given, not the ones of the shell."""
    return {name: value for name, value in environment.items() if name not in ENVIRONMENT}


HELP = {"help_option_names": ["-h", "--help"]}


class Command(click.Command):
    """A script's command: -h as well as --help, and the one boundary for errors: the package's
    UserError (one sentence) becomes Click's one line on stderr and its exit code."""

    def __init__(self, *args, context_settings=None, **kwargs):
        super().__init__(*args, context_settings={**HELP, **(context_settings or {})}, **kwargs)

    def invoke(self, ctx):
        return _exits(super().invoke, ctx)


class Group(click.Group):
    """admin.py's group of commands, with the same boundary for every command in it."""

    def __init__(self, *args, context_settings=None, **kwargs):
        super().__init__(*args, context_settings={**HELP, **(context_settings or {})}, **kwargs)

    def invoke(self, ctx):
        return _exits(super().invoke, ctx)


def _exits(invoke, ctx):
    try:
        return invoke(ctx)
    except Interrupted as stopped:  # where a Ctrl-C stopped it: said as it is
        click.echo(str(stopped), err=True)
        ctx.exit(stopped.exit_code)
    except UserError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = exc.exit_code
        raise error from None


def redis_options(command):
    """Add --redis-url and --stream, the two settings every script shares."""
    return redis_url_option(stream_option(command))


def redis_url_option(command):
    """Add --redis-url / REDIS_URL (admin.py metrics takes it with a --stream of its own)."""
    return click.option(
        "--redis-url",
        envvar=REDIS_URL,
        show_envvar=True,
        default=DEFAULT_REDIS_URL,
        show_default=True,
        help="Redis to connect to: redis://[[user]:password@]host:port/db, or rediss:// for TLS.",
    )(command)


def stream_option(command):
    """Add --stream / STREAM_KEY."""
    return click.option(
        "--stream",
        envvar=STREAM_KEY,
        callback=not_empty,
        show_envvar=True,
        default=DEFAULT_STREAM,
        show_default=True,
        help="The stream (the tutorial's topic) to use.",
    )(command)


def block_option(command):
    """Add --block: how long one blocking read (XREAD / XREADGROUP BLOCK) waits, for a reader."""
    return click.option(
        "--block",
        "block_ms",
        default=2000,
        show_default=True,
        type=click.IntRange(1, 60_000),
        help="How long one read waits for new entries, in milliseconds.",
    )(command)


def dead_letter_option(command):
    """Add --dead-letter / DEAD_LETTER_KEY, for the scripts that read or write dead letters."""
    return click.option(
        "--dead-letter",
        "dlq",
        default=None,
        callback=not_empty,
        envvar=DEAD_LETTER_KEY,
        show_envvar=True,
        help="The dead-letter stream.  [default: <stream>:dlq; {<stream>}:dlq on a cluster; per shard, "
        "<dead-letter>:{<shard's tag>}]",
    )(command)


def shards_option(command):
    """Add --shards / STREAM_SHARDS: the logical stream as N stream keys (see stream_pubsub/shards.py)."""
    return click.option(
        "--shards",
        default=None,
        type=click.IntRange(1, 256),
        envvar=STREAM_SHARDS,
        show_envvar=True,
        help="Split the stream into N shards (stream keys), to spread it over a cluster's masters. "
        "Recorded in Redis by the first script that uses it; later scripts need not say it.  "
        "[default: what Redis recorded for the stream; 1 if nothing]",
    )(command)


def maxlen_option(help: str, name: str = "maxlen"):
    """--maxlen / STREAM_MAXLEN: the producer caps the stream with it; admin.py info shows how full it is."""
    return click.option(
        "--maxlen", name, default=None, type=click.IntRange(min=1), envvar=STREAM_MAXLEN, show_envvar=True, help=help
    )


def metrics_option(port: str, what: str):
    """--metrics ADDRESS / METRICS_ADDRESS: serve Prometheus metrics (consumer.py :9102, producer.py :9101)."""
    return click.option(
        "--metrics",
        metavar="ADDRESS",
        envvar=METRICS_ADDRESS,
        show_envvar=True,
        help=f"Serve Prometheus metrics on ADDRESS ({port} on every interface, 127.0.0.1{port}): {what}.",
    )


def not_empty(ctx, param, value: str | None) -> str | None:
    """Click callback: a name (sensor, group, consumer, stream) must not be blank, and must be UTF-8 text."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return utf8(ctx, param, value)


def utf8(ctx, param, value: str | None) -> str | None:
    """Click callback: text from the command line or the environment must be UTF-8 (it goes to Redis so)."""
    if value is not None and any("\ud800" <= c <= "\udfff" for c in value):  # bytes Python could not decode
        raise click.BadParameter("is not valid UTF-8")
    return value


def position(ctx, param, value: str) -> str:
    """Click callback: a group's position, where it starts or is moved to: `$`, `0` or an entry ID."""
    if not is_position(value):
        raise click.BadParameter(f"{value!r}: use $ (the end), 0 (the start) or an ID like 1700000000000-0")
    return value


def milliseconds(ctx, param, value: str) -> tuple[int, ...]:
    """Click callback: a list of delays, `1000,5000,30000` (none: empty)."""
    parts = [part.strip() for part in value.split(",")] if value.strip() else []
    if not all(part.isdigit() and 0 < int(part) <= 86_400_000 for part in parts) or len(parts) > 20:
        raise click.BadParameter("use up to 20 delays in milliseconds (1 to 86400000), like 1000,5000,30000")
    return tuple(int(part) for part in parts)
