"""Nothing twice: the same entry in two consumers' hands, and an entry that kills its consumer.

Two consumers can hold one entry: one frozen (SIGSTOP, a paused VM) past --claim-idle and resumed
after another claimed it, a --claim-idle shorter than the work, two processes started with the
same name. The handler may then run twice (at-least-once), but each entry's fan-out outputs are
added once: by the commit whose XACK removed it from the pending list. And a process started
under a name that a live one holds is refused.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter

import pytest
from conftest import DLQ, GROUP, STREAM, add, group_info, handlers, journal, pending_ids, run, spawn, stop, wait_for

TIMEOUT = 60

OUTPUT = """
import os
import time
from journal import journal

DELAY = float(os.environ.get("DELAY", "0"))


def process(message_id, message):
    journal(message_id, str(os.getpid()))
    time.sleep(DELAY)
    return {"input": message_id}
"""


def outputs(r, key: str = "app:out") -> Counter:
    return Counter(fields[b"input"].decode() for _, fields in r.xrange(key))


def consumer(server, env, name, *args, log=subprocess.PIPE):
    return spawn("consumer.py", GROUP, name, "--stats-interval", 0, *args, url=server.url, env=env, stderr=log)


def test_a_frozen_consumer_resumed_after_its_batch_was_claimed_adds_no_output_twice(r, server, tmp_path):
    """c1 freezes (SIGSTOP) holding 20 entries; c2 claims and processes them after --claim-idle; c1 is
    resumed and finishes the same batch: the handler ran twice for those, the outputs are there once."""
    env = {**handlers(tmp_path, app=OUTPUT), "DELAY": "0.05"}
    ids = add(r, 40)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--count", 40, "--claim-idle", 1000, "--handler", "app:process", "--fanout", "app:out")
    log = open(tmp_path / "c1.err", "w")
    c1 = consumer(server, env, "c1", *args, log=log)
    log.close()
    wait_for(lambda: journal(tmp_path), what="c1 at work")
    c1.send_signal(signal.SIGSTOP)  # frozen in its batch: nothing it holds is kept fresh any more
    try:
        wait_for(lambda: r.xpending_range(STREAM, GROUP, "-", "+", 1, idle=1000), what="c1's entries claimable")
        c2 = consumer(server, env, "c2", *args, "--burst")
        out, err = c2.communicate(timeout=TIMEOUT)
        assert c2.returncode == 0, err
        assert outputs(r) == Counter(ids)  # c2 claimed what c1 held, and read the rest
    finally:
        c1.send_signal(signal.SIGCONT)
    wait_for(lambda: "acknowledged by another consumer already" in (tmp_path / "c1.err").read_text(), what="c1 told")
    stop(c1)
    err = (tmp_path / "c1.err").read_text()
    assert c1.returncode == 0, err
    calls = Counter(line[0] for line in journal(tmp_path))
    twice = [i for i, n in calls.items() if n > 1]
    assert twice  # both consumers had entries in hand, and both ran the handler on them
    assert outputs(r) == Counter(ids)  # ... but every input's output is there once
    line = next(x for x in err.splitlines() if "acknowledged by another consumer already" in x)
    assert re.match(r"c1: \d+ entries of app:event had been acknowledged by another consumer already", line)
    assert "processed twice, their outputs added once" in line
    assert group_info(r)["pending"] == 0 and r.xlen(DLQ) == 0


GIL_HOG = """
import os
from journal import journal


def process(message_id, message):
    journal(message_id, str(os.getpid()))
    if int(message["temp"][2:]) % 25 == 0:
        sum(range(30_000_000))  # one long C call: it holds the GIL, so the lease thread cannot run
    return {"input": message_id}
"""


def test_a_handler_holding_the_gil_past_claim_idle_has_its_entries_claimed_but_outputs_added_once(r, server, tmp_path):
    """A handler that holds the GIL for longer than --claim-idle (a long C call) keeps the lease
    thread from refreshing what it holds: the other consumer claims those entries and processes them
    too. Each input's output is added once all the same."""
    env = handlers(tmp_path, app=GIL_HOG)
    ids = add(r, 200)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--claim-idle", 100, "--block", 100, "--handler", "app:process", "--fanout", "app:out")
    c1 = consumer(server, env, "c1", "--count", 200, *args)  # takes the whole backlog in hand at once
    wait_for(lambda: group_info(r)["last-delivered-id"].decode() == ids[-1], what="all 200 delivered to c1")
    c2 = consumer(server, env, "c2", *args)  # everything is delivered: c2 can only claim
    wait_for(lambda: sum(outputs(r).values()) == 200 and not group_info(r)["pending"], timeout=TIMEOUT, what="done")
    for process in (c1, c2):
        _, err = stop(process)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    calls = Counter(line[0] for line in journal(tmp_path))
    assert any(n > 1 for n in calls.values()), "no entry was claimed from a busy consumer: nothing was tested"
    assert outputs(r) == Counter(ids)
    assert group_info(r)["pending"] == 0


def test_a_second_process_under_a_running_consumers_name_is_refused(r, server, tmp_path):
    """Two processes named c1 would share one pending list and both process it: the second is
    refused, while the first runs and while it is frozen; once it is dead, its name is free."""
    env = {**handlers(tmp_path, app=OUTPUT), "DELAY": "0.3"}
    add(r, 10)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--count", 10, "--handler", "app:process", "--fanout", "app:out")
    first = consumer(server, env, "c1", *args)
    wait_for(lambda: journal(tmp_path), what="the first c1 at work")

    second = run("consumer.py", GROUP, "c1", *args, "--burst", url=server.url, env=env, timeout=TIMEOUT)

    assert second.returncode == 1 and second.stdout == ""
    [line] = second.stderr.splitlines()
    assert re.fullmatch(
        r"Error: consumer c1 of group group1 is already running \(connected from 127\.0\.0\.1:\d+ for \d+s\): "
        r"consumer names must be unique in a group; pick another name, or stop that one",
        line,
    )
    first.send_signal(signal.SIGSTOP)  # frozen, it still holds its name
    try:
        frozen = run("consumer.py", GROUP, "c1", *args, "--burst", url=server.url, env=env, timeout=TIMEOUT)
        assert frozen.returncode == 1 and "is already running" in frozen.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    calls = [line[0] for line in journal(tmp_path)]
    assert len(calls) == len(set(calls))  # nothing was processed by two c1s

    first.kill()  # dead: the name is free at once, and its pending entries are its successor's
    first.wait()
    third = run("consumer.py", GROUP, "c1", *args, "--burst", url=server.url, env=env, timeout=TIMEOUT)
    assert third.returncode == 0, third.stderr
    assert outputs(r) == Counter(r_id.decode() for r_id, _ in r.xrange(STREAM))
    assert group_info(r)["pending"] == 0


KILLER = """
import os
from journal import journal


def process(message_id, message):
    journal(message_id, str(os.getpid()))
    if message["temp"] == "kill":
        os._exit(9)  # like a segfault, or the OOM killer: no Python cleanup, no XACK
"""


@pytest.mark.parametrize("names", ["same", "new"], ids=["restarted", "claimed"])
def test_an_entry_that_kills_its_consumer_is_the_only_one_dead_lettered(r, server, tmp_path, names):
    """One of 300 readings makes the process exit on the spot. Whether its consumer is restarted
    under its name (own pending) or others claim from it, the redelivered batch goes one entry at a
    time, acknowledged as it goes: the killer alone reaches --max-deliveries; the other 299 are
    processed."""
    env = handlers(tmp_path, app=KILLER)
    pipe = r.pipeline(transaction=False)
    for i in range(300):
        temp = "kill" if i == 150 else f"0.{i + 1:04d}"
        pipe.xadd(STREAM, {"sensor_id": "sensor1", "temp": temp, "humidity": "0.5"})
    ids = [i.decode() for i in pipe.execute()]
    killer = ids[150]
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--count", 100, "--claim-idle", 100, "--max-deliveries", 3, "--handler", "app:process", "--burst")
    runs = []
    for attempt in range(12):
        name = "c1" if names == "same" else f"c{attempt}"
        time.sleep(0.15)  # past --claim-idle: what the last one held is claimable
        done = run("consumer.py", GROUP, name, *args, url=server.url, env=env, timeout=TIMEOUT)
        runs.append(done.returncode)
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode == 0:
            break
    assert runs[-1] == 0 and 9 in runs, runs
    letters = r.xrange(DLQ)
    assert [fields[b"dlq.id"].decode() for _, fields in letters] == [killer]
    assert b"delivered 4 times" in letters[0][1][b"dlq.error"]
    handled = {line[0] for line in journal(tmp_path)}
    assert handled >= set(ids)  # every good reading was handled (some twice: at-least-once)
    assert group_info(r)["pending"] == 0


# -- a dead-letter key that is not a stream ----------------------------------------------------------


def test_a_dead_letter_key_that_is_not_a_stream_is_refused_before_anything_is_read(r, server):
    add(r, 3)
    r.set(DLQ, "not a stream")

    done = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=TIMEOUT)

    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"Error: --dead-letter {DLQ} holds a string, not a stream (WRONGTYPE); left untouched"
    ]
    assert r.get(DLQ) == b"not a stream" and r.xinfo_groups(STREAM) == []  # nothing read, nothing created


def test_a_dead_letter_key_replaced_mid_run_leaves_the_poison_pending_and_says_so(r, server, tmp_path):
    """The dead letter's script checks the key before its XACK: the entry is in one place, pending,
    and the consumer says so truthfully (a MULTI ran the XACK without the XADD: it was in neither)."""
    log = open(tmp_path / "c1.err", "w")
    c1 = spawn("consumer.py", GROUP, "c1", "--block", 200, "--stats-interval", 0, url=server.url, stderr=log)
    log.close()
    wait_for(lambda: r.exists(STREAM) and r.xinfo_groups(STREAM), what="the group")
    r.set(DLQ, "a string now")
    poison = r.xadd(STREAM, {"sensor_id": "sensor1", "temp": "hot", "humidity": "0.5"}).decode()
    wait_for(lambda: "could not dead-letter" in (tmp_path / "c1.err").read_text(), what="the refusal said")
    stop(c1)
    err = (tmp_path / "c1.err").read_text()
    assert c1.returncode == 0 and "Traceback" not in err, err
    assert re.search(rf"c1: could not dead-letter {poison} \(.*WRONGTYPE.*\); left pending", err)
    assert pending_ids(r) == [poison]
    assert r.get(DLQ) == b"a string now"
