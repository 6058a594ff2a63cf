"""A consumer's name is its own: one process per name in a group, at any time.

The group keeps one pending list per consumer name. Two processes started with the same name
share it: each re-reads "its own" pending entries on start, which are the other's in hand, and
both process them (seen: 20 of 20 twice). Redis has no notion of a process, so each consumer
keeps one connection open while it runs, named after its stream, group and name (CLIENT
SETNAME). A consumer that finds that name among the server's clients (CLIENT LIST) refuses to
start. A process that dies closes its connections at once (the kernel does), so a consumer
restarted after a crash starts; a frozen one (SIGSTOP, a paused VM) still holds its name.

While a batch has been in hand for long (a slow or hung handler), the name says since when:
`admin.py info` reads it there.

A user who may not run CLIENT SETNAME or CLIENT LIST (a least-privilege ACL) gets the weaker
check XINFO CONSUMERS allows: a warning when the name read from the group less than a second ago
(another process, or this one's last run: it cannot tell).
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis.exceptions as rex

from .telling import UserError

PREFIX = "consumer.py:"
RECENT_MS = 1000  # without CLIENT LIST: a name that read this recently may be running


class NameInUse(UserError):
    """Another process runs as this consumer: the sentence says which."""


def client_name(stream: str, group: str, consumer: str) -> str:
    """The connection name of a consumer: names may hold spaces; a connection name may not."""
    return PREFIX + hashlib.sha1("\0".join((stream, group, consumer)).encode()).hexdigest()[:24]


class Presence:
    def __init__(self, connection, key: str, *, group: str, consumer: str):
        self.connection, self.key, self.group, self.consumer = connection, key, group, consumer
        self.name = client_name(key, group, consumer)
        self.pool = self.conn = None
        self.lock = threading.Lock()

    def node(self):
        """The client of the server that holds the key (a cluster's master of its slot)."""
        db = self.connection.db
        return db.get_node_from_key(self.key).redis_connection if self.connection.cluster else db

    def take(self) -> str | None:
        """Take the name (again, after a reconnect), or raise NameInUse. Returns a warning when this
        Redis user may not list clients (then a name that read a moment ago may be ours, restarted)."""
        self.close()  # (our own connection of before a reconnect is not another process)
        try:
            self._check_clients()
        except rex.NoPermissionError:
            return self._recent_reads()
        with self.lock:
            self.pool = self.connection.pool_for(self.key)
            self.conn = self.pool.get_connection()
            try:
                self._setname(self.name)
            except rex.NoPermissionError:
                self._drop()
        return None

    def _check_clients(self) -> None:
        # A consumer killed a moment ago: its connection may not be closed on the server yet.
        for attempt in range(3):
            others = [c for c in self.node().client_list() if c.get("name", "").startswith(self.name)]
            if not others:
                return
            time.sleep(0.2 * (attempt + 1))
        other = others[0]
        raise NameInUse(
            f"consumer {self.consumer} of group {self.group} is already running (connected from {other['addr']} "
            f"for {other['age']}s): consumer names must be unique in a group; pick another name, or stop that one"
        )

    def _recent_reads(self) -> str | None:
        try:
            consumers = self.connection.db.xinfo_consumers(self.key, self.group)
        except rex.ResponseError:  # no group yet, or XINFO not allowed either
            return None
        for found in consumers:
            if found["name"].decode("utf-8", "replace") == self.consumer and found["idle"] < RECENT_MS:
                return (
                    f"consumer {self.consumer} of group {self.group} read {found['idle']} ms ago: if another process "
                    "runs under this name, stop one (names must be unique in a group); this Redis user may not list "
                    "clients to tell (it needs +client|list +client|setname)"
                )
        return None

    def holding_since(self, since_ms: int | None) -> None:
        """Say in the connection's name since when (Unix ms) a batch is in hand; None: no longer."""
        with self.lock:
            if self.conn is not None:
                try:
                    self._setname(self.name if since_ms is None else f"{self.name}:held-{since_ms}")
                except rex.RedisError:
                    self._drop()  # the main loop finds out what is wrong, and takes the name again

    def _setname(self, name: str) -> None:
        self.conn.send_command("CLIENT", "SETNAME", name)
        self.conn.read_response()

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.disconnect()
            self.pool.release(self.conn)
        self.conn = None

    def close(self) -> None:
        with self.lock:
            self._drop()


def holding(db, consumers: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], float]:
    """{(stream, group, consumer): seconds it has held a batch} for the consumers (of streams on this
    server) whose connection name says so (admin.py info); {} where CLIENT LIST is not allowed."""
    names = {client_name(*consumer): consumer for consumer in consumers}
    found, now_ms = {}, time.time() * 1000
    try:
        clients = db.client_list() if names else []
    except rex.NoPermissionError:
        return {}
    for client in clients:
        name, _, since = client.get("name", "").partition(":held-")
        if name in names and since.isdigit():
            found[names[name]] = max(0.0, (now_ms - int(since)) / 1000)
    return found
