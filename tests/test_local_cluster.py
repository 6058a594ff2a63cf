"""`make cluster`: a Redis Cluster to try --shards and failover on, with nothing installed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import psutil
import pytest
from conftest import ROOT, run
from redis.cluster import RedisCluster

from stream_pubsub.local_cluster import slot_ranges


def test_slot_ranges_are_the_even_layout_of_redis_cli():
    assert slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert slot_ranges(1) == [(0, 16383)]
    assert sum(last - first + 1 for first, last in slot_ranges(7)) == 16384


def test_make_cluster_serves_until_ctrl_c():
    make = subprocess.Popen(
        ["make", "-s", "cluster"],
        cwd=ROOT,
        env={**os.environ, "CLUSTER_REPLICAS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first, second = make.stdout.readline(), make.stdout.readline()
        assert "cluster of 3 masters and 3 replicas on 127.0.0.1 ports" in first, first + second
        url = re.search(r"serving (redis://\S+) \(REDIS_URL=", second).group(1)
        ports = [int(p) for p in re.findall(r"\d+", first.split("ports", 1)[1])]
        assert len(ports) == 6
        got = run("producer.py", "sensor1", "--shards", "12", "--wait-replicas", "1", url=url)
        assert got.returncode == 0, got.stderr
        rc = RedisCluster.from_url(url)
        roles = sorted("master" if "master" in n["flags"] else "slave" for n in rc.cluster_nodes().values())
        assert rc.get("app:event:shards") == b"12" and roles == ["master"] * 3 + ["slave"] * 3
        rc.close()
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        rest, _ = make.communicate(timeout=30)
    assert "stopped" in rest and "Traceback" not in rest
    gone = run("producer.py", "sensor1", url=url)
    assert gone.returncode == 1 and "cannot reach Redis" in gone.stderr


def local_cluster(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`python -m stream_pubsub.local_cluster <args>` (what `make cluster` runs), in a session of its
    own, and the servers of that session still running when it ended (all killed, if any)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_pubsub.local_cluster", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        servers = [p.name() for p in psutil.process_iter() if _session(p) == process.pid]
        if process.poll() is None or servers:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), servers


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_starts_no_server(flag):
    got, servers = local_cluster(flag)

    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    assert got.stdout.startswith("usage: python -m stream_pubsub.local_cluster [-h]\n")
    assert "`make cluster`: 3 masters and 3 replicas on loopback" in got.stdout and "CLUSTER_REPLICAS" in got.stdout
    assert servers == []


def test_an_unknown_argument_is_a_usage_error_and_starts_no_server():
    got, servers = local_cluster("--masters", "5")

    assert got.returncode == 2 and got.stdout == ""
    assert got.stderr.startswith("usage: python -m stream_pubsub.local_cluster [-h]\n")
    assert "error: unrecognized arguments: --masters 5" in got.stderr
    assert servers == []
