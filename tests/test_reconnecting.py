"""Redis gone for longer than a moment: a running producer and consumer say "lost Redis ...;
reconnecting" once, then "still reconnecting ..." every STILL_RECONNECTING_EVERY seconds (so they do
not look hung), and "reconnected" when it is back, and go on where they were.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import redis
from conftest import ROOT, script_env, spawn, stop, wait_for

from stream_pubsub import connection

# The scripts say it every 20 s. The test sets the module's constant to 1 s from outside (the
# scripts are run through runpy), so that it need not wait a minute: the scripts have no test-only code.
PERIOD = 1.0


def launch(script: str, *args: str, url: str, log) -> subprocess.Popen:
    """`python <script> <args>`, with connection.STILL_RECONNECTING_EVERY = PERIOD; stderr to `log`."""
    code = (
        "import runpy, sys; import stream_pubsub.connection as connection; "
        f"connection.STILL_RECONNECTING_EVERY = {PERIOD}; "
        f"sys.argv[0] = {script!r}; runpy.run_path({script!r}, run_name='__main__')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=script_env(url),
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_the_default_period_is_twenty_seconds():
    assert connection.STILL_RECONNECTING_EVERY == 20.0


@pytest.mark.slow
def test_gone_for_a_while_says_still_reconnecting_then_reconnected_and_goes_on(own_server, tmp_path):
    persist = ("--appendonly", "yes", "--requirepass", "s3cret")  # back with its data after a restart
    server = own_server(*persist)
    url, where = f"redis://:s3cret@127.0.0.1:{server.port}/0", f"127.0.0.1:{server.port}"
    admin = redis.Redis(port=server.port, password="s3cret")
    logs = {name: tmp_path / f"{name}.err" for name in ("consumer", "producer")}
    said = {name: (lambda path=path: path.read_text()) for name, path in logs.items()}
    with open(logs["consumer"], "w") as c_err, open(logs["producer"], "w") as p_err:
        consumer = launch("consumer.py", "group1", "c1", "--start-from", "0", url=url, log=c_err)
        producer = launch("producer.py", "sensor1", "--count", "0", "--interval", "0.5", url=url, log=p_err)
    processes = [consumer, producer]
    try:
        wait_for(lambda: admin.exists("app:event") and caught_up(admin) >= 2, timeout=20, what="the consumer at work")

        server.stop()
        for name in logs:
            wait_for(lambda name=name: len(still(said[name]())) >= 2, timeout=30, what=f"the {name} saying so twice")
        for name in logs:
            text = said[name]()
            assert text.count(f"lost Redis at {where}") == 1, text
            lines = still(text)
            for line in lines:
                assert re.fullmatch(
                    rf"still reconnecting to {where} after \d+s \(Error 111 .*Connection refused\.\)", line
                )
            assert seconds(lines[1]) > seconds(lines[0])
            assert "reconnected" not in text and "s3cret" not in text
        assert consumer.poll() is None and producer.poll() is None  # waiting, not gone

        own_server(*persist, port=server.port)
        for name in logs:
            wait_for(
                lambda name=name: f"reconnected to {where} after" in said[name](), timeout=20, what=f"the {name} back"
            )
        stored = admin.xlen("app:event")
        wait_for(lambda: admin.xlen("app:event") >= stored + 3, timeout=20, what="the producer going on")
        wait_for(lambda: caught_up(admin) >= stored + 3, timeout=20, what="the consumer going on")

        stop(producer)
        total = admin.xlen("app:event")
        wait_for(lambda: caught_up(admin) == total, timeout=20, what="the consumer to read the last one")
        stop(consumer)
        assert consumer.returncode == 0 and producer.returncode == 0
        for name in logs:
            text = said[name]()
            assert "Traceback" not in text and "s3cret" not in text
            assert text.count(f"reconnected to {where}") == 1, text
        group = admin.xinfo_groups("app:event")[0]
        assert group["pending"] == 0
        assert group["last-delivered-id"] == admin.xrevrange("app:event", count=1)[0][0]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        admin.close()


def caught_up(client) -> int:
    """How many entries the group has read and acknowledged (0 before it exists)."""
    try:
        groups = client.xinfo_groups("app:event")
    except redis.ResponseError:
        return 0
    if not groups or groups[0]["pending"]:
        return 0
    return groups[0]["entries-read"] or 0


def still(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("still reconnecting")]


def seconds(line: str) -> int:
    return int(re.search(r"after (\d+)s", line).group(1))


def test_a_least_privilege_producer_reconnects_although_it_may_not_ping(own_server, tmp_path):
    """The README's producer user may only XADD: its PING after a reconnect is refused (NOPERM), and
    that is Redis answering, not a reason to exit."""
    srv = own_server("--enable-debug-command", "yes")
    admin = redis.Redis.from_url(srv.url)
    [rule] = [line.split() for line in (ROOT / "README.md").read_text().splitlines() if "SETUSER producer" in line]
    admin.execute_command(*rule)
    url = f"redis://producer:producer-password@127.0.0.1:{srv.port}/0"
    log = open(tmp_path / "producer.err", "w")
    producer = spawn("producer.py", "sensor1", "--count", 0, "--interval", 0.05, url=url, stderr=log)
    log.close()
    wait_for(lambda: admin.exists("app:event") and admin.xlen("app:event") > 3, what="readings flowing")
    # Redis stalls past the producer's 5 s socket timeout: its XADD times out, it reconnects and PINGs
    redis.Redis.from_url(srv.url, socket_timeout=10).execute_command("DEBUG", "SLEEP", 6)
    wait_for(lambda: "reconnected" in (tmp_path / "producer.err").read_text(), what="reconnected")
    held = admin.xlen("app:event")
    wait_for(lambda: admin.xlen("app:event") > held + 3, what="readings flowing again")
    stop(producer, signal.SIGINT)
    err = (tmp_path / "producer.err").read_text()
    assert producer.returncode == 0, err
    assert "no permission" not in err and "Traceback" not in err
