"""The connection to Redis, and what the scripts say when it fails.

One rule for every script: a server that is down at start-up, a wrong password or a refused
permission is one line on stderr and exit 1 (`Connection.errors()`); a server that goes away
while a script runs is said once and waited for with backoff (`Connection.wait_until_back()`).
Secrets are masked in everything printed.
"""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import redis.exceptions as rex
from redis.backoff import ExponentialBackoff
from redis.connection import SSLConnection
from redis.retry import Retry
from walrus import Database

from .masking import mask_url, scrub, where
from .stopping import pause
from .telling import UserError, say

# How to get a server when none answers; said once, in the error line.
START_HINT = "start one with `make redis` (no install needed) or `docker compose up -d redis`"

# Every command gets an answer well within this; BLOCK reads add their own wait on top
# (redis-py would otherwise give up on a BLOCK 8000 read after its 5 s socket timeout).
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0  # TCP connect, and the TLS handshake of rediss://

# While Redis stays away, a running script says so this often (seconds), so that it does not look hung.
STILL_RECONNECTING_EVERY = 20.0

# redis-py's prefix on an error inside a pipeline; the command it quotes holds a whole reading.
PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


# What waiting until Redis is back can heal: it went away, or (a cluster) a slot changed hands.
TRANSIENT = (rex.ConnectionError, rex.TimeoutError)
CLUSTER_TRANSIENT = (*TRANSIENT, rex.ClusterError, rex.TryAgainError, rex.AskError, rex.RedisClusterException)


class WrongServer(rex.RedisError):
    """Something answers at the URL, but not in a way the scripts can use (its text says what to do)."""


class BoundedHandshake(SSLConnection):
    """rediss://: the TLS handshake is part of connecting, so it gets the connect timeout.

    redis-py runs it under the socket timeout (5 s, plus BLOCK for a reader). A plain Redis takes the
    TLS ClientHello for the start of a command and waits for the rest, silently, so a rediss:// URL
    pointing at it hung for all that time before "Timeout connecting to server".
    """

    def _connect(self):
        timeout, self.socket_timeout = self.socket_timeout, self.socket_connect_timeout
        try:
            sock = super()._connect()  # TCP connect, then the handshake, both within socket_connect_timeout
        finally:
            self.socket_timeout = timeout
        sock.settimeout(timeout)
        return sock


class Connection:
    """A walrus Database, or a RedisCluster for a cluster (`.db`), and the URL it came from, so
    errors can name where (masked).

    Any node of a Redis or Valkey cluster will do: `check()` notices that the node is a cluster
    node (INFO cluster) and connects to the whole cluster instead. walrus has no cluster client,
    but its containers (ConsumerGroup, Stream) work on a RedisCluster as they do on a Database.
    """

    cluster = False
    transient = TRANSIENT

    def __init__(self, url: str, *, read_timeout: float = 0.0):
        self.url = url
        self.where = where(url)
        self.socket_timeout = SOCKET_TIMEOUT + read_timeout
        try:
            # retry=0: we decide about retrying ourselves (redis-py's default retries an XADD
            # whose reply was lost, which stores it twice, and takes ~4 s to say "down").
            tls = {"connection_class": BoundedHandshake} if url.startswith("rediss://") else {}
            self.db = Database.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=self.socket_timeout,
                retry=Retry(ExponentialBackoff(), 0),
                **tls,
            )
            db = urlsplit(url).path.replace("/", "") if url.startswith(("redis://", "rediss://")) else ""
            if db and not db.isdigit():  # redis-py would quietly use database 0 instead
                raise ValueError("the database after the host must be a number, like /0")
            pool = self.db.connection_pool  # an unknown ?option fails here, not as a traceback later
            pool.connection_class(**pool.connection_kwargs)  # (a connection object; nothing connects)
        except (ValueError, TypeError) as exc:
            raise UserError(f"invalid Redis URL {mask_url(url)!r}: {scrub(str(exc), url)}")

    def pool_for(self, key: str):
        """The connection pool of the node that holds the key (on a cluster: its master now)."""
        if self.cluster:
            return self.db.get_node_from_key(key).redis_connection.connection_pool
        return self.db.connection_pool

    def node_of(self, key: str) -> str:
        """host:port of the server that holds the key."""
        return self.db.get_node_from_key(key).name if self.cluster else self.where

    def check(self) -> None:
        """Fail fast, with one line, if nothing usable answers at the URL; notice a cluster.

        A server that answers but is still loading its data (it just restarted) is waited for.
        """
        with self.errors():
            try:
                self.db.ping()
            except rex.BusyLoadingError as exc:
                self.wait_until_back(None, exc)
            except rex.NoPermissionError:  # a least-privilege user (a producer may only XADD): it answered
                pass
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                if self.url.startswith("rediss://") and not isinstance(exc, rex.AuthenticationError):
                    if speaks_plain_redis(self.db.connection_pool.connection_kwargs):
                        raise WrongServer(
                            f"Redis at {self.where} did not answer TLS (rediss://): is it a plain redis:// server?"
                        ) from None
                raise
            try:
                enabled = self.db.info("cluster").get("cluster_enabled") == 1
            except rex.ResponseError:  # INFO not allowed for this user: a plain Redis, as far as we can tell
                enabled = False
            if enabled:
                self.join_cluster()

    def join_cluster(self) -> None:
        """Talk to the whole cluster (RedisCluster), starting from the node of the URL.

        No retries inside redis-py: they are spent in milliseconds, while a failover takes a node
        timeout and a second or two; `wait_until_back` backs off for as long as it takes. BLOCK
        reads stay below the socket timeout, as on one node.
        """
        from redis.backoff import NoBackoff
        from redis.cluster import RedisCluster

        self.db.close()
        self.db = RedisCluster.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=self.socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.cluster, self.transient = True, CLUSTER_TRANSIENT

    def errors(self, key: str | None = None):
        """`with connection.errors(key=stream):` turns a Redis error into one line and exit 1."""
        return _ErrorsToClick(self, key)

    def describe(self, exc: Exception, key: str | None = None) -> str:
        """One line a person can act on, for any Redis error; secrets masked."""
        text = PIPELINE_PREFIX.sub("", str(exc)).strip()  # the server's error, not the XADD it refused
        text = scrub(text, self.url).splitlines()[0] if text else ""
        if isinstance(exc, WrongServer):
            return text
        if "NOAUTH" in text or "HELLO must be called with the client already authenticated" in text:
            return f"Redis at {self.where} needs a password: put it in the URL, redis://[user]:password@host:port/db"
        if isinstance(exc, rex.AuthenticationError) or "WRONGPASS" in text:
            return f"Redis at {self.where} refused the credentials: {text}"
        if isinstance(exc, rex.NoPermissionError):
            return f"the Redis user has no permission for this ({self.where}): {text}"
        if isinstance(exc, rex.BusyLoadingError):
            return f"Redis at {self.where} is loading its data (it has just started)"
        if isinstance(exc, rex.ReadOnlyError):
            return f"Redis at {self.where} is a read-only replica{self._master()}: point --redis-url at the master"
        if isinstance(exc, rex.InvalidResponse):  # the first byte of its answer is not one of RESP's
            return f"{self.where} does not speak the Redis protocol (is it another service? check --redis-url)"
        if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
            return f"cannot reach Redis at {self.where} ({text or type(exc).__name__}); {START_HINT}"
        if isinstance(exc, (rex.RedisClusterException, rex.ClusterError)):
            return f"the Redis Cluster of {self.where} is not usable now ({text or type(exc).__name__})"
        if text.startswith("WRONGTYPE"):
            what = f"the key {key!r}" if key else "a key it was given"
            return f"{what} at {self.where} holds another type of value, not a stream (WRONGTYPE); left untouched"
        return f"Redis at {self.where} said: {text}"

    def _master(self) -> str:
        """Where a replica's master is, as " of host:port" (INFO replication); "" where INFO is refused."""
        try:
            info = self.db.info("replication")
            return f" of {info['master_host']}:{info['master_port']}"
        except (rex.RedisError, KeyError, TypeError):
            return ""

    def wait_until_back(self, stop, exc: Exception) -> None:
        """Say once that Redis went away, then retry with backoff until it answers again.

        `stop` is any flag (stopping.Stop or Interrupt) that ends the wait when set. Credentials
        or permissions that were refused are not retried: they will not heal.
        """
        if isinstance(exc, (rex.AuthenticationError, rex.NoPermissionError)):
            raise UserError(self.describe(exc))
        if self.moved(exc):  # nothing went away: learn where the slot is now, quietly
            self.db.nodes_manager.initialize()
            return
        if isinstance(exc, rex.BusyLoadingError):
            say(f"{self.describe(exc)}; waiting")
        else:
            say(f"lost Redis at {self.where} ({self._reason(exc)}); reconnecting")
        started, delay = time.monotonic(), 0.05
        said = started
        while not stop:
            pause(stop, delay)
            try:
                self.answers()
            except self.transient as again:
                if isinstance(again, rex.AuthenticationError):
                    raise UserError(self.describe(again))
                delay = min(delay * 2, 2.0)
                if (now := time.monotonic()) - said >= STILL_RECONNECTING_EVERY:  # still away: not hung
                    said = now
                    say(f"still reconnecting to {self.where} after {now - started:.0f}s ({self._reason(again)})")
                continue
            except rex.ResponseError as again:
                raise UserError(self.describe(again))
            say(f"reconnected to {self.where} after {time.monotonic() - started:.1f}s")
            return

    def _reason(self, exc: Exception) -> str:
        return scrub(str(exc), self.url) or type(exc).__name__

    def moved(self, exc: Exception) -> bool:
        """A cluster's slot is elsewhere now, or on its way (migration; Redis 7.0 also unblocks a
        reader whose slot moved with `UNBLOCKED ...`): read again, from where it is."""
        return self.cluster and (isinstance(exc, (rex.AskError, rex.TryAgainError)) or unblocked(exc))

    def answers(self) -> None:
        """PING; on a cluster: learn the slots anew, then PING every master and ask it whether the
        cluster is ok (a master is missing, and the cluster down, until its replica has taken over)."""
        if not self.cluster:
            try:
                self.db.ping()
            except rex.NoPermissionError:  # a least-privilege user (a producer may only XADD): it answered
                pass
            return
        self.db.nodes_manager.initialize()
        for node in self.db.get_primaries():
            node.redis_connection.ping()
            if node.redis_connection.cluster("info").get("cluster_state") != "ok":  # still electing a master
                raise rex.ClusterDownError("the cluster is not ok yet")


def unblocked(exc: Exception) -> bool:
    """Redis 7.0 ended a blocked read (XREAD, XREADGROUP BLOCK) with `UNBLOCKED ...`: the stream key
    no longer exists, or, on a cluster, its slot moved (failover, migration). Later servers say
    NOGROUP, or MOVED/ASK, instead."""
    return str(exc).startswith("UNBLOCKED")


def eviction_risk(db, keys: list[str]) -> str | None:
    """A sentence when the server may evict these keys, None when it cannot (or may not be asked).

    With `maxmemory` set and a `maxmemory-policy` of allkeys-*, Redis deletes whole keys when it
    is full: a stream goes at once, with its groups and pending entries, and nobody is told.
    volatile-* only evicts keys with a TTL, so it matters once one of these keys has one. INFO
    answers where CONFIG GET is refused (managed services); a user who may not run INFO is not
    warned.
    """
    try:
        risky = [m for m in _per_node(db.info("memory")) if int(m.get("maxmemory", 0)) and m.get("maxmemory_policy")]
        policy = next((m["maxmemory_policy"] for m in risky if m["maxmemory_policy"] != "noeviction"), None)
        if policy is None:
            return None
        if policy.startswith("volatile-"):
            expiring = [key for key in keys if db.pttl(key) > 0]
            if not expiring:
                return None
            policy = f"{policy}, and {expiring[0]} has a TTL"
    except (rex.ResponseError, rex.RedisClusterException):  # INFO or PTTL not allowed for this user
        return None
    return (
        f"WARNING: Redis evicts keys when it is full (maxmemory-policy {policy}): the stream, its groups "
        "and pending entries can vanish without a word. Set maxmemory-policy noeviction for streams "
        "(full, Redis refuses new entries instead, and the producer waits)"
    )


def evicted_keys(db) -> int | None:
    """INFO stats evicted_keys (None if not allowed): compared before and after a group vanished."""
    try:
        stats = db.info("stats")
    except (rex.ResponseError, rex.RedisClusterException):
        return None
    return sum(int(node.get("evicted_keys", 0)) for node in _per_node(stats))


def _per_node(info: dict) -> list[dict]:
    """INFO of one server, or of every node of a cluster (a RedisCluster answers {node: INFO})."""
    if info and all(isinstance(value, dict) for value in info.values()):
        return list(info.values())
    return [info]


def speaks_plain_redis(kwargs: dict) -> bool:
    """Does a plain (non-TLS) Redis answer at host:port? A PING, within the connect timeout.

    Asked only after a rediss:// connection failed: a TLS server drops this PING unanswered.
    """
    try:
        address = (kwargs.get("host", "localhost"), kwargs.get("port", 6379))
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(1) in (b"+", b"-")  # +PONG, or an error such as -NOAUTH: RESP either way
    except OSError:
        return False


def connect(url: str, *, read_timeout: float = 0.0) -> Connection:
    """A connection that answered a PING (or one line and exit 1)."""
    connection = Connection(url, read_timeout=read_timeout)
    connection.check()
    return connection


class _ErrorsToClick:
    """Turn any Redis error raised inside `with connection.errors():` into one line and exit 1."""

    def __init__(self, connection: Connection, key: str | None):
        self.connection, self.key = connection, key

    def __enter__(self):
        return self.connection

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, (rex.RedisError, rex.RedisClusterException)):
            raise UserError(self.connection.describe(exc, self.key)) from None
        return False
