"""`make demo` runs `python demo.py`: the tutorial's story with the real scripts, each step checked.

These run it as a user does (with --fast: shorter waits, the same steps) against a server the test
started, with nothing listening at REDIS_URL (it starts and stops its own), and interrupted by
Ctrl-C in the middle (it stops everything it started).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from conftest import ROOT, run, script_env, wait_for

from stream_pubsub.local_server import free_port

STEPS = [
    "Step 1/6: three producers (sensor1..3) publish 30 readings; consumers c1 and c2 of group demo share them",
    "Step 2/6: c2 comes back with a fault (every reading fails) and is killed mid-batch (SIGKILL); "
    "c1 claims what it held",
    "Step 3/6: a poison reading (temp=hot) arrives; c1 moves it to the dead-letter stream demo:event:dlq",
    "Step 4/6: the producer caps the stream at MAXLEN 100 while c1 keeps up; then, with c1 stopped, "
    "`admin.py trim --safe` keeps what c1 has not read",
    "Step 5/6: the same readings over plain pub/sub (PUBLISH) while the subscriber is offline: lost; "
    "the stream kept them",
    "Step 6/6: `admin.py info`: nothing pending, nothing lost",
]


def assert_told_the_whole_story(out: str) -> None:
    lines = out.splitlines()
    at = [lines.index(step) for step in STEPS]  # each announced on a line of its own, in order
    assert at == sorted(at)
    assert re.search(r"ok: 30 readings sent; c1 processed \d+ and c2 \d+, each reading once", out)
    assert re.search(r"group demo on demo:event: (\d+) pending entries \(c2 \1\)", out)  # admin.py pending
    assert re.search(r"ok: c1 claimed c2's \d+ readings", out)
    assert "invalid reading: temp is not a number: 'hot'" in out  # admin.py dlq list
    assert "kept 10 entries that --maxlen 10 would have removed, because group demo has not read 10" in out
    assert "# the subscriber is back: it got 0 of 20" in out
    assert "stream: holds all 20, and c1 processed 20 of 20" in out
    assert "Groups" in out and "Warnings" in out  # admin.py info
    assert "ok: 241 entries added: 240 readings all processed once" in out
    assert "0 pending, lag 0: nothing lost" in out
    assert re.search(r"^demo done in \d+s: every step showed what it should", out, re.MULTILINE)


def assert_redis_holds_the_outcome(r) -> None:
    stream = r.xinfo_stream("demo:event")
    assert stream["entries-added"] == 241 and stream["length"] == 40
    (group,) = r.xinfo_groups("demo:event")
    assert group["name"] == b"demo" and group["pending"] == 0
    assert group["last-delivered-id"] == stream["last-generated-id"]
    consumers = {c["name"]: c["pending"] for c in r.xinfo_consumers("demo:event", "demo")}
    assert consumers == {b"c1": 0, b"c2": 0}
    ((_, dead),) = r.xrange("demo:event:dlq")
    assert dead[b"temp"] == b"hot"
    assert dead[b"dlq.error"] == b"invalid reading: temp is not a number: 'hot'"


def test_demo_tells_the_story_on_a_running_server(server, r):
    # Left over from an earlier run: the demo clears its own keys first...
    r.xadd("demo:event", {"sensor_id": "old", "temp": "1", "humidity": "1"})
    r.xgroup_create("demo:event", "demo", id="0")
    r.xreadgroup("demo", "c9", {"demo:event": ">"})
    r.xadd("demo:event:dlq", {"old": "dead letter"})
    # ...and leaves everything else alone.
    r.xadd("app:event", {"sensor_id": "mine", "temp": "0.5", "humidity": "0.5"})
    r.xgroup_create("app:event", "group1", id="0")
    started = time.monotonic()
    done = run("demo.py", "--fast", url=server.url, timeout=150)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        f"using the Redis at {server.url}; the demo touches only demo:event and demo:event:dlq "
        "(cleared first, left for you to look at)"
    )
    assert_told_the_whole_story(done.stdout)
    assert done.stderr == ""
    assert_redis_holds_the_outcome(r)
    assert r.xlen("app:event") == 1 and r.xinfo_groups("app:event")[0]["pending"] == 0
    assert took < 60


def test_demo_leaves_a_key_it_did_not_make_alone(server, r):
    r.set("demo:event", "not a stream")
    done = run("demo.py", "--fast", url=server.url)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "demo FAILED at the start: the key demo:event holds a string, not the "
        "demo's stream; left untouched (use --stream to pick another key)"
    )
    assert r.get("demo:event") == b"not a stream"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def servers_on(port: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if "-server" in (p.info["name"] or "") and f":{port}" in cmdline:
            found.append(p)
    return found


def test_demo_starts_and_stops_an_embedded_server_when_nothing_listens():
    nothing = free_port()
    done = run("demo.py", "--fast", url=f"redis://:s3cret@127.0.0.1:{nothing}/0", timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    said = re.fullmatch(
        rf"nothing answers at redis://:\*\*\*@127\.0\.0\.1:{nothing}/0: started an embedded "
        r"valkey-server \S+ at redis://127\.0\.0\.1:(\d+)/0 \(stopped at the end\)",
        first,
    )
    assert said, first
    assert "s3cret" not in done.stdout + done.stderr
    assert_told_the_whole_story(done.stdout)
    assert done.stdout.rstrip().endswith("; the embedded server is stopped")
    port = int(said[1])
    assert not port_open(port) and not servers_on(port)
    assert not port_open(nothing)


def running(demo: subprocess.Popen) -> str:
    """The command lines of what the demo runs now."""
    lines = []
    for p in psutil.Process(demo.pid).children(recursive=True):
        try:
            lines.append(" ".join(p.cmdline()))
        except psutil.Error:  # ended meanwhile
            pass
    return "\n".join(lines)


@pytest.mark.parametrize("how", ["terminal", "demo-only"])
def test_ctrl_c_stops_everything_the_demo_started(how):
    """Ctrl-C in a terminal reaches the whole process group; `kill -INT` only the demo."""
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "demo.py"), "--fast"],
        cwd=ROOT,
        env=script_env(f"redis://127.0.0.1:{free_port()}/0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out = []
        while not out or not out[-1].startswith("Step 2/6"):
            line = demo.stdout.readline()
            assert line, "".join(out) + demo.stderr.read()
            out.append(line)
        wait_for(lambda: "consumer.py demo c2" in running(demo), what="c2 back (in step 2)")
        started = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "valkey-server" in names and "consumer.py demo c1" in names
        port = int(re.search(r"started an embedded .* at redis://127\.0\.0\.1:(\d+)/0", out[0])[1])
        if how == "terminal":
            os.killpg(demo.pid, signal.SIGINT)
        else:
            demo.send_signal(signal.SIGINT)
        rest, err = demo.communicate(timeout=20)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    assert demo.returncode == 130
    assert re.fullmatch(
        r"demo interrupted at step 2 \(claiming\): stopped \d+ scripts? and the embedded server "
        rf"at redis://127\.0\.0\.1:{port}/0; nothing it started is left running",
        err.strip().splitlines()[-1],
    ), err
    assert "Traceback" not in err
    alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert not port_open(port)
