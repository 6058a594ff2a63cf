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
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from conftest import ROOT, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards

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


# What a job prints when it is stopped (SIGTERM): the consumer's and the producer's last lines.
ON_STOP = re.compile(r"stopping after the batch in hand|: stopped after \d|^sent \d+ readings from ")


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
        probe = redis.Redis.from_url(server.url)
        self.cluster = probe.info("cluster").get("cluster_enabled") == 1
        probe.close()

    def client(self) -> redis.Redis | RedisCluster:
        return (RedisCluster if self.cluster else redis.Redis).from_url(self.server.url)

    def reading(self, group: str, consumer: str, stream: str, since: float) -> bool:
        """Has the consumer read from its group (on any shard of the stream) since then? Then the group
        exists, and what a producer sends now is the group's (a group created at $ skips what came before)."""
        db = self.client()
        try:
            n = db.get(shards.record_key(stream))
            for key in shards.keys(stream, int(n)) if n else [stream]:
                if not db.exists(key) or group.encode() not in [g["name"] for g in db.xinfo_groups(key)]:
                    continue
                idle = {c["name"]: c["idle"] for c in db.xinfo_consumers(key, group)}.get(consumer.encode())
                if idle is not None and idle <= (time.monotonic() - since) * 1000:
                    return True
            return False
        finally:
            db.close()

    def pending_since(self, group: str, stream: str, ms: int) -> bool:
        """Has every entry pending in the group been idle (waited for its XACK) for ms or longer?"""
        db = self.client()
        try:
            n = db.get(shards.record_key(stream))
            for key in shards.keys(stream, int(n)) if n else [stream]:
                if db.exists(key) and group.encode() in [g["name"] for g in db.xinfo_groups(key)]:
                    held = {row["message_id"] for row in db.xpending_range(key, group, "-", "+", 1000)}
                    if held != {row["message_id"] for row in db.xpending_range(key, group, "-", "+", 1000, idle=ms)}:
                        return False
            return True
        finally:
            db.close()

    def started(self, command: str, log: Path, since: float) -> bool:
        """A consumer has read from its group; a producer has sent a reading; anything else has begun."""
        words = shlex.split(command)
        if words[1] == "consumer.py":
            stream = words[words.index("--stream") + 1] if "--stream" in words else "app:event"
            return self.reading(words[2], words[3], stream, since)
        if words[1] != "producer.py" or log.read_text():
            return True
        if "-q" in words or "--quiet" in words:  # a quiet producer says nothing until it ends: look in Redis
            stream = words[words.index("--stream") + 1] if "--stream" in words else "app:event"
            launched_ms = (time.time() - (time.monotonic() - since)) * 1000
            db = self.client()
            try:
                newest = db.xrevrange(stream, count=1)
            finally:
                db.close()
            return bool(newest) and int(newest[0][0].split(b"-")[0]) >= launched_ms  # an entry since it began
        return False

    def run(self, command: str, shown: list[str]) -> None:
        if command.startswith((". .venv/bin/activate", "export REDIS_URL=")):
            return
        words = shlex.split(command.rstrip("&"))
        if words[:3] == ["python", "admin.py", "pending"] or "--claim-idle" in words:
            # A person types this a while after the entries were delivered: the README shows their IDLE
            # in seconds, and claims them with --claim-idle. Wait until Redis says they waited as long.
            group = words[3] if words[1] == "admin.py" else words[2]
            stream = words[words.index("--stream") + 1] if "--stream" in words else "app:event"
            ms = int(words[words.index("--claim-idle") + 1]) if "--claim-idle" in words else 1000
            wait_for(lambda: self.pending_since(group, stream, ms), what=f"entries pending for {ms} ms")
        if command == "docker compose restart redis":
            running = [log for _, log in self.jobs.values()]
            wait_for(lambda: all(log.read_text() for log in running), what="every job at work before the restart")
            self.server.stop()
            wait_for(lambda: all("lost Redis" in log.read_text() for log in running), what="every job to lose Redis")
            self.server.start()
            return
        if command.endswith("&"):
            number = min(set(range(1, len(self.jobs) + 2)) - set(self.jobs))  # bash reuses freed ones
            log, since = self.folder / f"job{number}-{time.monotonic_ns()}.log", time.monotonic()
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
            wait_for(lambda: self.started(command[:-1], log, since), timeout=20, what=f"`{command}` to start")
            return
        if kill := re.fullmatch(r"kill( -9)?((?: %\d+)+)", command):
            picked = [self.jobs.pop(int(n)) for n in re.findall(r"%(\d+)", kill.group(2))]
            # What the README shows after `kill` was printed before it, but for what a stop prints: wait
            # for the jobs to print it (if they never do, check() below says what is missing).
            before = {mask(line) for line in shown if not ON_STOP.search(line)}
            so_far = lambda: {mask(line) for _, log in picked for line in log.read_text().splitlines()}  # noqa: E731
            try:
                wait_for(lambda: before <= so_far(), timeout=20, what=f"what `{command}` shows")
            except AssertionError:
                pass
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
