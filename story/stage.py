"""The stage the demo's steps play on: the scripts run as a reader runs them in their terminals,
what is said before each step, and the checks in Redis and in the scripts' output after it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import redis

import config
from stream_pubsub.dead_letters import dead_letter_key
from stream_pubsub.masking import scrub

ROOT = Path(__file__).resolve().parent.parent  # where producer.py, consumer.py and admin.py are
GROUP = "demo"
STEPS = 6
PROCESSED = re.compile(r"^(\d+-\d+) (\S+) temp=", re.MULTILINE)  # consumer.py's line per reading
SENT = re.compile(r"^message (\d+-\d+) sent$", re.MULTILINE)  # producer.py's line per reading


@dataclass(frozen=True)
class Pace:
    interval: float  # producers' --interval in steps 1 and 2
    claim_idle: int  # c1's --claim-idle, ms
    pause: float  # seconds between steps, for a reader to catch up
    listen: float  # how long the subscriber listens after reconnecting


NORMAL = Pace(interval=0.1, claim_idle=3000, pause=1.5, listen=1.0)
FAST = Pace(interval=0.02, claim_idle=2000, pause=0.0, listen=0.3)


class StepFailed(Exception):
    """A step did not show what it should have; the text says what was seen instead."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: stop everything the demo started."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Signals:
    """Ctrl-C and SIGTERM raise Interrupted, except inside `deferred()`, where a process is being
    started and recorded: there the signal waits until the process is on the list to stop."""

    def __init__(self):
        self.depth, self.pending = 0, None
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        if self.depth:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextmanager
    def deferred(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                signum, self.pending = self.pending, None
                raise Interrupted(signum)

    @staticmethod
    def ignore():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@dataclass
class Script:
    """One run of producer.py, consumer.py or admin.py, its output in files (never a full pipe)."""

    name: str
    process: subprocess.Popen
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


class Demo:
    steps = STEPS  # how many steps begin() counts to (the cluster story has its own)

    def __init__(self, url: str, stream: str, pace: Pace, folder: Path, signals: Signals):
        self.url, self.stream, self.pace = url, stream, pace
        self.dlq = dead_letter_key(stream)
        self.folder, self.signals = folder, signals
        self.r = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        self.scripts: list[Script] = []
        self.sent: list[str] = []  # every ID a producer reported as sent
        self.step = 0
        self.title = "starting"

    # -- running the scripts -----------------------------------------------------------------
    def env(self) -> dict:
        return {
            **config.without_settings(os.environ),
            "REDIS_URL": self.url,
            "STREAM_KEY": self.stream,
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(self, name: str, script: str, *args, show: bool = True) -> Script:
        """Start `python <script> <args>` in the background, as in another terminal."""
        if show:
            self.say(f"$ python {script} {' '.join(map(str, args))}".rstrip(), indent=2)
        n = len(self.scripts)
        out, err = self.folder / f"{n:02d}-{name}.out", self.folder / f"{n:02d}-{name}.err"
        with self.signals.deferred(), open(out, "wb") as o, open(err, "wb") as e:
            process = subprocess.Popen(
                [sys.executable, str(ROOT / script), *map(str, args)],
                cwd=ROOT,
                env=self.env(),
                stdout=o,
                stderr=e,
                stdin=subprocess.DEVNULL,
            )
            self.scripts.append(Script(name, process, out, err))
        return self.scripts[-1]

    def run(self, name: str, script: str, *args, show: bool = True, timeout: float = 30) -> Script:
        """Run a script to its end; a non-zero exit fails the step with its error line."""
        done = self.spawn(name, script, *args, show=show)
        try:
            code = done.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"`{script} {' '.join(map(str, args))}` did not finish within {timeout:g}s")
        if code != 0:
            last = (done.stderr().strip().splitlines() or ["no output"])[-1]
            raise StepFailed(f"`{script} {' '.join(map(str, args))}` exited {code}: {self.masked(last)}")
        self.sent += SENT.findall(done.stdout()) if script == "producer.py" else []
        return done

    def stop(self, script: Script, sig=signal.SIGTERM, timeout: float = 10) -> int:
        if script.alive():
            script.process.send_signal(sig)
        try:
            return script.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{script.name} did not stop within {timeout:g}s of {signal.Signals(sig).name}")

    def stop_everything(self) -> int:
        """SIGTERM to every script still running (a consumer acknowledges its batch and exits),
        SIGKILL to any still there 3 s later. Returns how many the demo had not seen end yet
        (a Ctrl-C in the terminal reaches them too, and some may have ended by themselves)."""
        unfinished = sum(s.process.returncode is None for s in self.scripts)
        running = [s for s in self.scripts if s.alive()]
        for s in running:
            s.process.terminate()
        deadline = time.monotonic() + 3
        for s in running:
            try:
                s.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.process.kill()
                s.process.wait()
        return unfinished

    # -- saying and checking -------------------------------------------------------------------
    def masked(self, text: str) -> str:
        return scrub(text, self.url)

    def say(self, text: str = "", indent: int = 0) -> None:
        click.echo(self.masked("\n".join((" " * indent + line).rstrip() for line in text.splitlines())))

    def show(self, text: str, limit: int = 12) -> None:
        """Show a script's output, indented, at most `limit` lines."""
        lines = text.rstrip().splitlines()
        if len(lines) > limit:
            lines = lines[: limit - 1] + [f"... ({len(lines) - limit + 1} more lines)"]
        self.say("\n".join(lines), indent=4)

    def begin(self, name: str, title: str) -> None:
        """Announce the next step in one line, before it happens."""
        if self.step:
            time.sleep(self.pace.pause)
        self.step += 1
        self.title = name
        self.say()
        self.say(f"Step {self.step}/{self.steps}: {title}")

    def ok(self, text: str) -> None:
        self.say(f"ok: {text}", indent=2)

    def wait_until(self, condition, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} (waited {timeout:g}s)")
            time.sleep(0.05)

    def group(self) -> dict:
        for g in self.r.xinfo_groups(self.stream):
            if g["name"].decode() == GROUP:
                return g
        raise StepFailed(f"group {GROUP} does not exist on {self.stream}")

    def caught_up(self) -> bool:
        """The group has been delivered everything in the stream and acknowledged all of it."""
        g, last = self.group(), self.r.xinfo_stream(self.stream)["last-generated-id"]
        return g["pending"] == 0 and g["last-delivered-id"] == last

    def pending_of(self) -> dict[str, int]:
        return {c["name"].decode(): c["pending"] for c in self.r.xinfo_consumers(self.stream, GROUP)}

    def consumers_seen_since(self, name: str, since: float) -> bool:
        """The consumer has talked to Redis since `since` (time.monotonic())."""
        for c in self.r.xinfo_consumers(self.stream, GROUP):
            if c["name"].decode() == name:
                return c["idle"] / 1000 < time.monotonic() - since
        return False

    def processed_by(self, name: str) -> list[str]:
        """Every ID a consumer process of that name printed as processed (all its runs)."""
        return [i for s in self.scripts if s.name == name for i, _ in PROCESSED.findall(s.stdout())]

    def processed(self) -> list[str]:
        return [i for s in self.scripts if s.name in ("c1", "c2") for i, _ in PROCESSED.findall(s.stdout())]

    # -- the story ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Delete the demo's own keys, and only if they are the demo's (a stream, no other group)."""
        for key in (self.stream, self.dlq):
            kind = self.r.type(key).decode()
            if kind == "none":
                continue
            if kind != "stream":
                raise StepFailed(
                    f"the key {key} holds a {kind}, not the demo's stream; left untouched "
                    "(use --stream to pick another key)"
                )
            others = [g["name"].decode() for g in self.r.xinfo_groups(key) if g["name"].decode() != GROUP]
            if others:
                raise StepFailed(
                    f"the stream {key} has groups the demo did not make ({', '.join(others)}); "
                    "left untouched (use --stream to pick another key)"
                )
        self.r.delete(self.stream, self.dlq)
