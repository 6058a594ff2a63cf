"""`make redis`: a server for following the tutorial on a machine without Redis."""

from __future__ import annotations

import os
import signal
import subprocess

import psutil
import redis
from conftest import ROOT, run

from stream_pubsub.local_server import free_port


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


def test_make_redis_says_so_when_its_server_dies():
    port = free_port()
    env = {**os.environ, "REDIS_PORT": str(port)}
    make = subprocess.Popen(["make", "-s", "redis"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
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
