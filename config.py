"""What producer.py, consumer.py and admin.py share: defaults, env vars, connecting, masking.

Nothing here belongs to one script. Every script takes the same two settings:

    --redis-url / REDIS_URL    where Redis is (redis://, rediss:// for TLS, passwords allowed)
    --stream    / STREAM_KEY   the stream, the tutorial's "topic"
"""

from __future__ import annotations

import os
import re
import signal
import time
from urllib.parse import urlsplit

import click
import redis.exceptions as rex
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from walrus import Database

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "app:event"  # the tutorial's key

# How to get a server when none answers; said once, in the error line.
START_HINT = "start one with `make redis` (no install needed) or `docker compose up -d redis`"

# Every command gets an answer well within this; BLOCK reads add their own wait on top
# (redis-py would otherwise give up on a BLOCK 8000 read after its 5 s socket timeout).
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print or log."""
    # Up to the last @: an unencoded / # ? or @ in a password must not leave part of it showing.
    url = re.sub(r"(?<=://)([^/@:]*):.*@", r"\1:***@", url)  # user:password@
    url = re.sub(r"(?<=://)(?!\*\*\*@)([^/:@][^:@]*)@", "***@", url)  # password-only form
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def scrub(text: str, url: str) -> str:
    """Remove the URL's secrets from an error text (redis-py may quote parts of the URL)."""
    parts = urlsplit(url) if "://" in url else None
    secrets = [parts.password] if parts and parts.password else []
    secrets += re.findall(r"(?i)password=([^&]+)", url)
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    # An unencoded # ? or / in a password splits the URL in the wrong place, and the error then
    # quotes a piece of it ("Port could not be cast to integer value as 's3c'"): mask every piece.
    if userinfo := re.match(r"[^:/]*://(.*)@", url):
        password = userinfo.group(1).partition(":")[2] or userinfo.group(1)
        for piece in sorted(filter(None, re.split(r"[#?/]", password)), key=len, reverse=True):
            text = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", "***", text)
    return text.replace(url, mask_url(url))


def redis_options(command):
    """Add --redis-url and --stream, the two settings every script shares."""
    command = click.option(
        "--stream",
        envvar="STREAM_KEY",
        show_envvar=True,
        default=DEFAULT_STREAM,
        show_default=True,
        help="The stream (the tutorial's topic) to use.",
    )(command)
    return click.option(
        "--redis-url",
        envvar="REDIS_URL",
        show_envvar=True,
        default=DEFAULT_REDIS_URL,
        show_default=True,
        help="Redis to connect to: redis://[[user]:password@]host:port/db, or rediss:// for TLS.",
    )(command)


def not_empty(ctx, param, value: str | None) -> str | None:
    """Click callback: a name (sensor, group, consumer) that is blank is a usage error."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def dead_letter_option(command):
    """Add --dead-letter / DEAD_LETTER_KEY, for the scripts that read or write dead letters."""
    return click.option(
        "--dead-letter",
        "dlq",
        default=None,
        envvar="DEAD_LETTER_KEY",
        show_envvar=True,
        help="The dead-letter stream.  [default: <stream>:dlq]",
    )(command)


class Redis:
    """A connection and the URL it came from, so errors can name where (masked)."""

    def __init__(self, url: str, *, read_timeout: float = 0.0):
        self.url = url
        self.where = _where(url)
        try:
            # retry=0: we decide about retrying ourselves (redis-py's default retries an XADD
            # whose reply was lost, which stores it twice, and takes ~4 s to say "down").
            self.db = Database.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT + read_timeout,
                retry=Retry(ExponentialBackoff(), 0),
            )
            db = urlsplit(url).path.replace("/", "") if url.startswith(("redis://", "rediss://")) else ""
            if db and not db.isdigit():  # redis-py would quietly use database 0 instead
                raise ValueError("the database after the host must be a number, like /0")
            pool = self.db.connection_pool  # an unknown ?option fails here, not as a traceback later
            pool.connection_class(**pool.connection_kwargs)  # (a connection object; nothing connects)
        except (ValueError, TypeError) as exc:
            raise click.ClickException(f"invalid Redis URL {mask_url(url)!r}: {scrub(str(exc), url)}")

    def check(self) -> None:
        """Fail fast, with one line, if nothing usable answers at the URL.

        A server that answers but is still loading its data (it just restarted) is waited for.
        """
        with self.errors():
            try:
                self.db.ping()
            except rex.BusyLoadingError as exc:
                self.wait_until_back(None, exc)

    def errors(self, key: str | None = None):
        """`with redis.errors(key=stream):` turns a Redis error into one line and exit 1."""
        return _ErrorsToClick(self, key)

    def describe(self, exc: Exception, key: str | None = None) -> str:
        """One line a person can act on, for any Redis error; secrets masked."""
        text = scrub(str(exc), self.url).strip().splitlines()[0] if str(exc).strip() else ""
        if "NOAUTH" in text or "HELLO must be called with the client already authenticated" in text:
            return f"Redis at {self.where} needs a password: put it in the URL, redis://[user]:password@host:port/db"
        if isinstance(exc, rex.AuthenticationError) or "WRONGPASS" in text:
            return f"Redis at {self.where} refused the credentials: {text}"
        if isinstance(exc, rex.NoPermissionError):
            return f"the Redis user has no permission for this ({self.where}): {text}"
        if isinstance(exc, rex.BusyLoadingError):
            return f"Redis at {self.where} is loading its data (it has just started)"
        if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
            return f"cannot reach Redis at {self.where} ({text or type(exc).__name__}); {START_HINT}"
        if text.startswith("WRONGTYPE"):
            what = f"the key {key!r}" if key else "a key it was given"
            return f"{what} at {self.where} holds another type of value, not a stream (WRONGTYPE); left untouched"
        return f"Redis at {self.where} said: {text}"

    def wait_until_back(self, stop: Stop, exc: Exception) -> None:
        """Say once that Redis went away, then retry with backoff until it answers again.

        Credentials or permissions that were refused are not retried: they will not heal.
        """
        if isinstance(exc, (rex.AuthenticationError, rex.NoPermissionError)):
            raise click.ClickException(self.describe(exc))
        if isinstance(exc, rex.BusyLoadingError):
            click.echo(f"{self.describe(exc)}; waiting", err=True)
        else:
            reason = scrub(str(exc), self.url) or type(exc).__name__
            click.echo(f"lost Redis at {self.where} ({reason}); reconnecting", err=True)
        started, delay = time.monotonic(), 0.05
        while not stop:
            pause(stop, delay)
            try:
                self.db.ping()
            except (rex.ConnectionError, rex.TimeoutError) as again:
                if isinstance(again, rex.AuthenticationError):
                    raise click.ClickException(self.describe(again))
                delay = min(delay * 2, 2.0)
                continue
            except rex.ResponseError as again:
                raise click.ClickException(self.describe(again))
            click.echo(f"reconnected to {self.where} after {time.monotonic() - started:.1f}s", err=True)
            return


class _ErrorsToClick:
    """Turn any Redis error raised inside `with redis.errors():` into one line and exit 1."""

    def __init__(self, redis: Redis, key: str | None):
        self.redis, self.key = redis, key

    def __enter__(self):
        return self.redis

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, rex.RedisError):
            raise click.ClickException(self.redis.describe(exc, self.key)) from None
        return False


def _where(url: str) -> str:
    """host:port of a URL for messages (never the password)."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return mask_url(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return mask_url(url)


class Stop:
    """Ctrl-C / SIGTERM handling shared by the long-running scripts.

    The first signal only sets a flag (the loop finishes the batch in hand, then stops);
    the second raises StopNow at once. Handlers do nothing else: printing from a signal
    handler can collide with a print in progress, so they write straight to fd 2.
    """

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def __bool__(self):
        return self.requested

    def sleep(self, seconds: float) -> None:
        pause(self, seconds)

    def _handle(self, signum, frame):
        if self.requested:
            raise StopNow()
        self.requested = True
        os.write(2, b"stopping after the batch in hand (Ctrl-C again to quit at once)\n")


def pause(stop, seconds: float) -> None:
    """time.sleep that ends early once `stop` (any flag that is true when set) is set.

    A plain sleep goes on after a signal handler ran; this one wakes within 50 ms.
    """
    deadline = time.monotonic() + seconds
    while not stop and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


class StopNow(BaseException):
    """A second Ctrl-C: leave now; whatever is unacknowledged stays pending in Redis."""
