"""`make redis`: a server for following the tutorial on a machine without Redis."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import psutil
import pytest
import redis
from conftest import ROOT, run

from stream_pubsub.local_server import LocalServer, PortTaken, free_port


def local_server(*args: str, port: int, timeout: float = 30) -> subprocess.CompletedProcess:
    """`python -m stream_pubsub.local_server` (what `make redis` runs) with REDIS_PORT=port.

    In a session of its own: if it starts a server after all, the test fails on the timeout, and
    everything it started is killed with it.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_pubsub.local_server", *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def answers(port: int) -> bool:
    """Does a Redis answer PING on this port (within a second)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_make_redis_serves_until_ctrl_c():
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    make = subprocess.Popen(
        ["make", "-s", "redis"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first = make.stdout.readline()
        assert f"serving redis://127.0.0.1:{port}/0 (REDIS_URL=redis://127.0.0.1:{port}/0)" in first
        url = f"redis://127.0.0.1:{port}/0"
        got = run("producer.py", "sensor1", url=url)
        assert got.returncode == 0, got.stderr
        assert redis.Redis.from_url(url).xlen("app:event") == 1
    finally:
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        rest, _ = make.communicate(timeout=15)
    assert "stopped" in rest and "Traceback" not in rest
    with_nothing = run("producer.py", "sensor1", url=url)
    assert with_nothing.returncode == 1 and "cannot reach Redis" in with_nothing.stderr


def test_make_redis_on_a_taken_port_says_so(server):
    got = subprocess.run(
        ["make", "-s", "redis"],
        cwd=ROOT,
        env={**os.environ, "REDIS_PORT": str(server.port)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert got.returncode != 0
    assert f"port {server.port} is taken" in got.stderr and "Traceback" not in got.stderr


def test_a_port_a_redis_answers_on_says_so_and_how_to_pick_another(r, server):
    r.set("mine", "kept")

    got = local_server(port=server.port)

    assert got.returncode == 1 and got.stdout == ""
    [line] = got.stderr.splitlines()
    other = int(re.search(r"`REDIS_PORT=(\d+) make redis`", line).group(1))
    assert line.endswith(
        f"port {server.port} is taken: a Redis-compatible server already answers there (the scripts can use it "
        f"as it is); to start another: `REDIS_PORT={other} make redis` (then REDIS_URL=redis://127.0.0.1:{other}/0)"
    )
    assert other != server.port and not answers(other)
    assert r.get("mine") == b"kept" and r.dbsize() == 1  # that server is left alone


def test_a_port_another_program_holds_is_one_line_with_how_to_pick_another():
    with socket.create_server(("127.0.0.1", 0)) as taken:  # listens, never answers
        port = taken.getsockname()[1]

        got = local_server(port=port)

        assert got.returncode == 1 and got.stdout == ""
        assert "Traceback" not in got.stderr
        [line] = got.stderr.splitlines()
        other = int(re.search(r"`REDIS_PORT=(\d+) make redis`", line).group(1))
        assert line.startswith("could not start ")
        assert line.endswith(
            f"port {port} is taken: another program listens there; to start on a free port: "
            f"`REDIS_PORT={other} make redis` (then REDIS_URL=redis://127.0.0.1:{other}/0)"
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", other))  # the port it suggests is free
        assert not answers(port)


@pytest.mark.parametrize("redis_there", [True, False], ids=["a-redis", "another-program"])
def test_local_server_on_a_taken_port_raises_port_taken(server_binary, server, redis_there):
    other = None if redis_there else socket.create_server(("127.0.0.1", 0))
    port = server.port if redis_there else other.getsockname()[1]
    try:
        with pytest.raises(PortTaken) as taken:
            LocalServer(server_binary, port=port).start()
    finally:
        if other:
            other.close()
    assert (taken.value.port, taken.value.redis) == (port, redis_there)
    assert redis.Redis(port=server.port).ping()  # the server that was there goes on


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_and_starts_nothing(flag):
    port = free_port()

    got = local_server(flag, port=port)

    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    assert got.stdout.startswith("usage: python -m stream_pubsub.local_server [-h]\n")
    assert "`make redis`: a server on localhost:6379 (or REDIS_PORT)" in got.stdout and "REDIS_PORT" in got.stdout
    assert not answers(port)


def test_an_unknown_argument_is_a_usage_error_and_starts_nothing():
    port = free_port()

    got = local_server("--port", "6390", port=port)

    assert got.returncode == 2 and got.stdout == ""
    assert got.stderr.startswith("usage: python -m stream_pubsub.local_server [-h]\n")
    assert "error: unrecognized arguments: --port 6390" in got.stderr
    assert not answers(port)


@pytest.mark.parametrize("value", ["abc", "0", "70000", ""])
def test_a_redis_port_that_is_not_a_port_is_one_line(value):
    got = local_server(port=value)  # type: ignore[arg-type]

    assert got.returncode == 1 and got.stdout == ""
    assert got.stderr == f"REDIS_PORT must be a number from 1 to 65535, not {value!r}\n"


def test_make_redis_says_so_when_its_server_dies():
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    make = subprocess.Popen(
        ["make", "-s", "redis"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        first = make.stdout.readline()
        [server] = [p for p in psutil.Process(make.pid).children(recursive=True) if "-server" in p.name()]
        server.kill()  # not Ctrl-C: a crash
        rest, _ = make.communicate(timeout=15)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    name = first.split(" serving ")[0]
    assert rest.startswith(f"{name} exited (exit code -9); stopped\n")  # (then make's own error line)
    assert make.returncode != 0
