"""The README's walkthroughs, run command by command against a server of the test's own.

Each `$ ` line of a ```console block in the chosen sections is run as written (with the venv's
python first on PATH and REDIS_URL pointing at the test's server). Lines ending in `&` start a
background job; `kill [-9] %N...` stops jobs. Every line the README shows after a command must
appear in what that command (or, after `kill`, those jobs) really printed, once IDs, numbers
and the reason of a lost connection are masked. `docker compose restart redis` restarts the
test's server; `. .venv/bin/activate` and `export REDIS_URL=...` are what the runner does anyway.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def steps(text: str) -> list[tuple[str, list[str]]]:
    """[(command, [lines shown after it])] of every console block, in order."""
    result = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                result.append((line[2:], []))
            elif line.strip():
                result[-1][1].append(line)
    return result


def mask(line: str) -> str:
    line = re.sub(r"\(.*\); reconnecting", "(...); reconnecting", line)
    line = re.sub(r"\d+(\.\d+)?", "N", line)
    return " ".join(line.split())


class Walkthrough:
    def __init__(self, server, folder: Path):
        self.server, self.folder = server, folder
        self.env = {
            **os.environ,
            "REDIS_URL": server.url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        self.env.pop("STREAM_KEY", None)
        self.jobs: dict[int, tuple[subprocess.Popen, Path]] = {}  # by job number, as bash counts

    def run(self, command: str, shown: list[str]) -> None:
        if command.startswith((". .venv/bin/activate", "export REDIS_URL=")):
            return
        if command == "docker compose restart redis":
            time.sleep(1)
            self.server.stop()
            time.sleep(1)
            self.server.start()
            time.sleep(2.5)
            return
        if command.endswith("&"):
            number = min(set(range(1, len(self.jobs) + 2)) - set(self.jobs))  # bash reuses freed ones
            log = self.folder / f"job{number}-{time.monotonic_ns()}.log"
            with open(log, "w") as out:
                job = subprocess.Popen(
                    ["bash", "-c", f"exec {command[:-1]}"],
                    cwd=ROOT,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self.jobs[number] = (job, log)
            time.sleep(1.5)  # let it start and register before the next step
            return
        if kill := re.fullmatch(r"kill( -9)?((?: %\d+)+)", command):
            time.sleep(1)  # let the jobs work through what was sent
            picked = [self.jobs.pop(int(n)) for n in re.findall(r"%(\d+)", kill.group(2))]
            for job, _ in picked:
                job.send_signal(signal.SIGKILL if kill.group(1) else signal.SIGTERM)
            for job, _ in picked:
                job.wait(15)
            printed = "".join(log.read_text() for _, log in picked)
            codes = [job.returncode for job, _ in picked]
            assert codes == [-9 if kill.group(1) else 0] * len(picked), (command, printed)
            self.check(command, shown, printed)
            return
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        printed = done.stdout + done.stderr
        expect_error = bool(shown) and shown[0].startswith("Error:")
        assert (done.returncode != 0) == expect_error, (command, printed)
        assert "Traceback" not in printed
        self.check(command, shown, printed)

    def check(self, command: str, shown: list[str], printed: str) -> None:
        real = {mask(line) for line in printed.splitlines()}
        missing = [line for line in shown if mask(line) not in real]
        assert not missing, f"`{command}` no longer prints:\n" + "\n".join(missing) + f"\n--- it printed:\n{printed}"

    def close(self) -> None:
        for job, _ in self.jobs.values():
            if job.poll() is None:
                job.kill()
                job.wait()


@pytest.mark.parametrize(
    "title",
    [
        "Following the tutorial",
        "What happens when things go wrong",
        "Your own processing",
        "Watch it from Prometheus",
    ],
)
def test_readme_walkthrough(title, own_server, tmp_path):
    walk_steps = steps(section(title))
    assert len(walk_steps) >= 8
    server = own_server("--appendonly", "yes", folder=tmp_path)  # survives the restart step
    walk = Walkthrough(server, tmp_path)
    try:
        for command, shown in walk_steps:
            walk.run(command, shown)
    finally:
        walk.close()


def test_readme_cluster_walkthrough(own_cluster, tmp_path):
    """ "When one Redis is not enough", on a cluster of 3 masters and 3 replicas, through one node."""
    walk_steps = steps(section("When one Redis is not enough"))
    assert len(walk_steps) >= 8
    cluster = own_cluster()
    walk = Walkthrough(cluster.nodes[2], tmp_path)
    try:
        for command, shown in walk_steps:
            walk.run(command, shown)
    finally:
        walk.close()


def test_the_runner_notices_output_that_changed(own_server, tmp_path):
    """The check above can fail: a README line the command does not print is reported."""
    walk = Walkthrough(own_server(), tmp_path)
    with pytest.raises(AssertionError, match="no longer prints"):
        walk.run("python producer.py sensor1", ["message 1-1 stored"])
    with pytest.raises(AssertionError):
        walk.run("python producer.py sensor1", ["Error: cannot reach Redis"])
