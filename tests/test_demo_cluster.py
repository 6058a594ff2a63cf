"""`make demo-cluster` runs `python demo.py --cluster`: the scale-out story on a Redis Cluster the
demo starts itself (3 masters + 3 replicas), each step checked, every server stopped at the end.

These run it as a user does (with --fast: no pauses, the same steps) on each server binary (the
hidden --server picks it), watching every server process it starts, including the master it kills
and starts again; and interrupted by Ctrl-C in the middle (it stops everything it started).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from conftest import ROOT, script_env

from stream_pubsub.local_server import free_port

STEPS = [
    "Step 1/5: demo:event as 12 shards over the 3 masters: consumer c1 records the 12 and creates group demo on "
    "every shard",
    "Step 2/5: c2 and c3 join group demo; 6 producers publish, two sensors to each master's shards, each reading "
    "confirmed by a replica (--wait-replicas 1)",
    "Step 3/5: the master of shards 4-7 (sensor10 and sensor11) is SIGKILLed mid-run; its replica takes over",
    "Step 5/5: the tally: the producers stop, the consumers drain all 12 shards and stop; was every reading sent "
    "processed, is anything pending, how many came twice",
]
NODE = r"127\.0\.0\.1:(\d+)"


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Watched:
    """`python demo.py --cluster --fast --server <binary>` in its own session, output in files,
    and every process it has started so far (polled while it runs): scripts and servers."""

    def __init__(self, binary: str, folder: Path):
        self.out, self.err = folder / "demo.out", folder / "demo.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "demo.py"), "--cluster", "--fast", "--server", binary],
                cwd=ROOT,
                env=script_env(f"redis://127.0.0.1:{free_port()}/0"),  # not used: nothing listens there
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.seen: dict[int, tuple[psutil.Process, str]] = {}

    def watch(self) -> None:
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for p in children:
            try:
                cmdline = " ".join(p.cmdline())  # (just forked, not yet exec'd: the demo's own, seen again later)
                parent = p.parent()
                if parent and parent.pid != self.process.pid and "-server" in parent.name():
                    continue  # a server's own fork (a full sync to a replica), not a server the demo started
            except psutil.Error:
                continue
            if cmdline:
                self.seen[p.pid] = (self.seen.get(p.pid, (p,))[0], cmdline)

    def started(self, what: str) -> list[str]:
        """The command lines of what it started: "server" (redis/valkey-server), "producer.py", ..."""
        at = 0 if what == "-server" else 1  # the binary itself, or the script python runs
        return [cmdline for _, cmdline in self.seen.values() if what in "".join(cmdline.split()[at : at + 1])]

    def until(self, condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and self.process.poll() is None:
            self.watch()
            assert time.monotonic() < deadline, self.stdout()[-3000:]
            time.sleep(0.1)

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def left_running(self) -> list[str]:
        """Whatever it started that is still there (servers and scripts alike)."""
        return [cmdline for p, cmdline in self.seen.values() if alive(p)]


def assert_told_the_whole_story(out: str, name: str) -> None:
    lines = out.splitlines()
    assert re.fullmatch(
        rf"started a {name}-server \S+ cluster of its own on 127\.0\.0\.1 \(stopped at the end\): "
        r"masters \d+, \d+, \d+, replicas \d+, \d+, \d+",
        lines[0],
    ), lines[0]
    at = [lines.index(step) for step in STEPS]  # each announced on a line of its own, in order
    assert at == sorted(at)
    assert "Step 4/5: slot " in out
    m0, m1, m2 = re.search(
        rf"ok: demo:event:shards = 12, group demo on every shard; {NODE} serves shards 0-3, {NODE} serves "
        rf"shards 4-7, {NODE} serves shards 8-11 \(4 each, as admin.py info shows\)",
        out,
    ).groups()
    sharing = re.search(
        r"ok: (\d+) readings sent in [\d.]+s, each confirmed by a replica, to 6 shards on 3 masters; "
        r"c1 processed (\d+), c2 processed (\d+), c3 processed (\d+): each reading once so far",
        out,
    )
    assert sharing, out
    sent, *each = map(int, sharing.groups())
    assert sum(each) == sent and all(each), sharing[0]
    new, old = re.search(
        rf"ok: {NODE} master of shards 4-7 [\d.]+s after the kill, {NODE} its replica; (?:the 6 producers and 3 "
        r"consumers|the 3 consumers and [2-5] of the 6 producers) each said \"lost Redis\" once and \"reconnected\" "
        r"once \(after [\d.]+-[\d.]+s\)(?:, (?:sensor\d+, )*sensor\d+ never noticed \(no write refused\))?; none "
        r"exited; sensor10 and sensor11 publish again through the new master \(\d+ readings since, processed\)",
        out,
    ).groups()
    assert old == m1 and new not in (m0, m1, m2)
    assert re.search(
        rf"ok: slot \d+ served by 127\.0\.0\.1:{m0} after \d+ ms; group demo moved with the shard \(3 consumers, "
        r"last delivered \d+-\d+\); sensor1 published \d+ readings since, all processed; no script said anything "
        r"\(no GROUP LOST, no lost Redis\)",
        out,
    ), out
    tally = re.search(
        r"ok: (\d+) readings sent, every one processed \(c1 (\d+), c2 (\d+), c3 (\d+)\): lost 0; "
        r"0 pending and lag 0 on all 12 shards; (\d+) entries stored",
        out,
    )
    assert tally, out
    sent, c1, c2, c3, stored = map(int, tally.groups())
    twice = int(re.search(r"ok: duplicates the failover caused: (\d+) readings? processed twice", out)[1])
    assert sent > 200 and c1 + c2 + c3 == stored + twice and stored >= sent
    assert (
        f"ok: the shards now: 5 on 127.0.0.1:{m0} (0-3, 8), 4 on 127.0.0.1:{new} (4-7), 3 on 127.0.0.1:{m2} (9-11)"
        in out
    )
    assert re.search(rf"^      length        {stored} entries", out, re.MULTILINE)  # admin.py info's totals
    assert re.search(r"^      demo   3          0        \d+-\d+  0$", out, re.MULTILINE)  # group: 0 pending, lag 0
    assert "Traceback" not in out
    assert re.search(
        r"^demo done in \d+s: every step showed what it should; the cluster's 6 servers are stopped$", out, re.M
    )


def test_demo_cluster_tells_the_scale_out_story_and_stops_every_server(server_binary, tmp_path):
    started = time.monotonic()
    demo = Watched(server_binary, tmp_path)
    try:
        demo.until(lambda: False, timeout=90)  # until it exits, noting every server it starts
    finally:
        demo.kill()
    took = time.monotonic() - started
    out, err = demo.stdout(), demo.stderr()
    assert demo.process.returncode == 0, out[-3000:] + err
    assert err == ""
    assert_told_the_whole_story(out, Path(server_binary).name.removesuffix("-server"))
    assert len(demo.started("-server")) == 7, demo.seen  # 6 nodes, and the killed master started again
    assert len(demo.started("consumer.py")) == 3 and len(demo.started("producer.py")) == 6
    assert not demo.left_running()
    assert took < 60


def test_ctrl_c_in_the_middle_stops_every_script_and_server(server_binary, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the scripts and the servers too."""
    demo = Watched(server_binary, tmp_path)
    try:
        demo.until(lambda: "is started again" in demo.stdout(), timeout=60)  # step 3: 7 servers started
        demo.until(
            lambda: (
                (len(demo.started("consumer.py")), len(demo.started("producer.py")), len(demo.started("-server")))
                == (3, 6, 7)
            ),
            timeout=10,
        )
        assert len(demo.started("consumer.py")) == 3 and len(demo.started("producer.py")) == 6, demo.seen
        assert len(demo.started("-server")) == 7, demo.seen
        os.killpg(demo.process.pid, signal.SIGINT)
        demo.process.wait(30)
    finally:
        demo.kill()
    err = demo.stderr()
    assert demo.process.returncode == 130, demo.stdout()[-2000:] + err
    assert re.fullmatch(
        r"demo interrupted at step 3 \(failover\): stopped \d+ scripts? and the cluster's 6 servers; "
        r"nothing it started is left running",
        err.strip().splitlines()[-1],
    ), err
    assert "Traceback" not in err
    assert not demo.left_running()
