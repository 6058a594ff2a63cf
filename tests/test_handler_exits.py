"""A handler that ends the process's work: exits, is interrupted, runs out of memory, hangs, or
leaves threads behind. Each is said in one line naming the entry, the consumer ends (or lets the
work go) with a non-zero exit, and the entry stays pending for a later delivery."""

from __future__ import annotations

import re
import signal
import time

import pytest
from conftest import GROUP, STREAM, add, handlers, journal, pending_ids, run, spawn, stop, wait_for

TIMEOUT = 60

EXITS = """
import sys
from journal import journal


def process(message_id, message):
    journal(message_id)
    if message["temp"] == "0.0003":
        {what}
"""


@pytest.mark.parametrize(
    "what, code, said",
    [
        ("sys.exit(3)", 3, "called sys.exit(3)"),
        ("sys.exit()", 1, "called sys.exit()"),
        ("sys.exit('bye')", 1, "called sys.exit('bye')"),
        ("raise KeyboardInterrupt", 130, "raised KeyboardInterrupt"),
        ("raise MemoryError", 1, "ran out of memory (MemoryError)"),
    ],
    ids=["exit-3", "exit-none", "exit-text", "keyboard-interrupt", "memory-error"],
)
def test_a_handler_that_ends_the_process_is_said_and_its_entry_stays_pending(r, server, tmp_path, what, code, said):
    env = handlers(tmp_path, app=EXITS.format(what=what))
    ids = add(r, 10)

    done = run(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--burst",
        "--handler",
        "app:process",
        url=server.url,
        env=env,
        timeout=TIMEOUT,
    )

    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "Aborted" not in done.stderr
    lines = done.stderr.splitlines()
    assert f"c1: the handler {said} on {ids[2]}: stopping (exit {code}); that entry stays pending" in lines
    assert re.fullmatch(r"c1: stopped after \d+\.\ds: processed 2, failed 0, .*", lines[-1])
    # the two before it are acknowledged; it and what was read after it stay pending, and nothing is a dead letter
    assert pending_ids(r)[0] == ids[2] and ids[0] not in pending_ids(r) and ids[1] not in pending_ids(r)
    assert not r.exists("app:event:dlq")
    assert [line[0] for line in journal(tmp_path)] == ids[:3]


HANGS = """
import time
from journal import journal


def process(message_id, message):
    journal(message_id)
    if message["temp"] == "0.0003":
        time.sleep(3600)
"""


def test_a_hung_handler_lets_its_batch_go_after_the_handler_timeout_and_others_take_it(r, server, tmp_path):
    """The handler hangs on the 3rd of 20 entries. Kept fresh until --handler-timeout, then let go:
    a second consumer claims what it held, and everything but the hanging entry's first delivery is
    processed. SIGTERM says what the stop waits for."""
    env = handlers(tmp_path, app=HANGS)
    ids = add(r, 20)
    r.xgroup_create(STREAM, GROUP, id="0")
    log = open(tmp_path / "c1.err", "w")
    args = ("--count", 20, "--claim-idle", 1000, "--handler-timeout", 3000, "--stats-interval", 0)
    c1 = spawn("consumer.py", GROUP, "c1", *args, "--handler", "app:process", url=server.url, env=env, stderr=log)
    log.close()
    wait_for(lambda: len(journal(tmp_path)) >= 3, what="the handler to hang")
    started = time.monotonic()
    time.sleep(1.5)  # past --claim-idle: still kept fresh, so nobody may claim it yet
    early = run("consumer.py", GROUP, "c2", *args, "--burst", url=server.url, timeout=TIMEOUT)
    assert early.stdout == "" and early.returncode == 0, early.stderr
    info = run("admin.py", "info", url=server.url)  # the consumer holding a batch for long is shown
    assert re.search(
        r"consumer c1 of group group1 has had a batch of app:event in hand for \d+s: a slow or hung handler",
        info.stdout,
    ), info.stdout
    wait_for(lambda: "letting them go" in (tmp_path / "c1.err").read_text(), timeout=10, what="the batch let go")
    assert time.monotonic() - started >= 1.4  # (not before the timeout of 3 s from the batch's start)
    wait_for(lambda: r.xpending_range(STREAM, GROUP, "-", "+", 1, idle=1000), what="the entries claimable")
    late = run("consumer.py", GROUP, "c2", *args, "--burst", url=server.url, timeout=TIMEOUT)
    assert late.returncode == 0, late.stderr
    # all 20: the two c1 had done were not acknowledged yet (its batch never ended): at-least-once
    assert [line.split()[0] for line in late.stdout.splitlines()] == ids
    c1.send_signal(signal.SIGTERM)
    wait_for(lambda: "waiting for the handler" in (tmp_path / "c1.err").read_text(), what="the stop said")
    _, _ = stop(c1, signal.SIGINT)  # the second signal quits at once
    err = (tmp_path / "c1.err").read_text()
    assert c1.returncode == 130, err
    assert re.search(
        r"c1: the handler has had 20 entries of app:event in hand for \d+\.\ds \(--handler-timeout 3000\): "
        r"letting them go, for the other consumers to claim after --claim-idle",
        err,
    )
    assert re.search(
        r"c1: the handler has had 20 entries of app:event in hand for \d+\.\ds, longer than --claim-idle; kept from "
        r"being claimed until --handler-timeout 3000",
        err,
    )
    assert re.search(r"stopping after the batch in hand: waiting for the handler, at work on it for \d+s", err)
    assert "Traceback" not in err


THREADS = """
import threading
import time


def process(message_id, message):
    threading.Thread(target=time.sleep, args=(3600,), name="forever").start()
"""


def test_a_handler_that_leaves_a_thread_running_does_not_keep_the_consumer_from_exiting(r, server, tmp_path):
    env = handlers(tmp_path, app=THREADS)
    add(r, 3)

    done = run(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--burst",
        "--handler",
        "app:process",
        url=server.url,
        env=env,
        timeout=20,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert re.fullmatch(r"c1: stopped after \d+\.\ds: processed 3, .*", lines[-2])
    assert lines[-1] == "exiting without waiting for 3 thread(s) the handler left running (forever, forever, forever)"
    assert pending_ids(r) == []
