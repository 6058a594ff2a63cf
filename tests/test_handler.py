"""Your own processing: `consumer.py GROUP CONSUMER --handler module:function [--fanout STREAM]`.

Each test writes its handler module into tmp_path and runs the scripts as a user does, with
PYTHONPATH pointing there. Every handler call is written to a journal file (one line per call,
O_APPEND, so several processes can share it): that is how a test knows what the handler saw.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from conftest import (
    DLQ,
    GROUP,
    STREAM,
    add,
    consume,
    dead_letters,
    fill_up,
    group_info,
    handlers,
    id_order,
    journal,
    pending,
    run,
    spawn,
    stop,
    summary,
    wait_for,
)

TIMEOUT = 30  # a --burst run that hangs fails instead of waiting for the suite's timeout


# -- a. success -----------------------------------------------------------------------------


def test_a_handler_that_returns_none_gets_each_entry_once_decoded_and_all_are_acknowledged(r, server, tmp_path):
    env = handlers(
        tmp_path,
        app="""
        import json
        from journal import journal


        def process(message_id, message):
            kinds = {type(message_id).__name__} | {type(x).__name__ for item in message.items() for x in item}
            journal(json.dumps([message_id, sorted(kinds), message]))
        """,
    )
    ids = add(r, 4) + add(r, 1, sensor="Zürich-3", note="ünïcode ✓")

    out, err, code = consume(server, env, "--handler", "app:process")

    assert code == 0, err
    assert out == ""  # the line per reading is the default handler's, not ours
    assert summary(err) == {"processed": 5, "failed": 0, "claimed": 0, "dead-lettered": 0,
                            "trimmed-pending": 0, "trimmed-unread": 0}  # fmt: skip
    calls = [json.loads(line) for line in (tmp_path / "journal.log").read_text().splitlines()]
    assert [entry_id for entry_id, _, _ in calls] == ids  # once each, in stream order
    assert {kind for _, kinds, _ in calls for kind in kinds} == {"str"}  # the ID, every name and value
    assert calls[0][2] == {"sensor_id": "sensor1", "temp": "0.0001", "humidity": "0.5"}
    assert calls[-1][2] == {"sensor_id": "Zürich-3", "temp": "0.0001", "humidity": "0.5", "note": "ünïcode ✓"}
    info = group_info(r)
    assert info["pending"] == 0 and info["last-delivered-id"].decode() == ids[-1]
    assert r.xlen(DLQ) == 0


# -- b. a failed delivery is retried ----------------------------------------------------------


def test_an_exception_leaves_the_entry_pending_and_a_later_delivery_succeeds(r, server, tmp_path):
    env = handlers(
        tmp_path,
        flaky="""
        import os
        from pathlib import Path
        from journal import journal


        def process(message_id, message):
            marker = Path(os.environ["JOURNAL"]).with_name(f"seen-{message_id}")
            journal(message_id)
            if not marker.exists():
                marker.touch()
                raise ConnectionError(f"warehouse API timed out for {message_id}")
        """,
    )
    ids = add(r, 3)

    out, err, code = consume(server, env, "--handler", "flaky:process", "--claim-idle", 200)

    assert code == 0, err
    for entry_id in ids:
        line = f"c1: failed {entry_id} (delivery 1): ConnectionError: warehouse API timed out for {entry_id}; "
        assert line + "left pending for retry" in err.splitlines()
    assert "(delivery 2)" not in err
    # the three failures were left pending, claimed back after --claim-idle 200 ms, and processed
    assert summary(err) == {"processed": 3, "failed": 3, "claimed": 3, "dead-lettered": 0,
                            "trimmed-pending": 0, "trimmed-unread": 0}  # fmt: skip
    assert Counter(c[0] for c in journal(tmp_path)) == {entry_id: 2 for entry_id in ids}
    assert pending(r) == [] and r.xlen(DLQ) == 0
    assert group_info(r)["last-delivered-id"].decode() == ids[-1]


def test_a_failed_entry_is_retried_by_its_consumer_restarted_under_the_same_name(r, server, tmp_path):
    """Without --claim-idle passing: the restarted consumer re-reads its own pending entries (ID 0)."""
    env = handlers(
        tmp_path,
        once="""
        import os
        from journal import journal


        def process(message_id, message):
            journal(message_id)
            if os.environ.get("FAIL"):
                raise TimeoutError("the database is down")
        """,
    )
    ids = add(r, 2)
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", "--handler", "once:process",
                     url=server.url, env={**env, "FAIL": "1"})  # fmt: skip
    wait_for(lambda: len(journal(tmp_path)) == 2, what="both entries tried")
    _, err = stop(consumer)
    assert consumer.returncode == 0, err
    assert f"c1: failed {ids[0]} (delivery 1): TimeoutError: the database is down; left pending for retry" in err
    assert [row["message_id"].decode() for row in pending(r)] == ids

    out, err, code = consume(server, env, "--handler", "once:process")

    assert code == 0, err
    assert summary(err)["processed"] == 2 and summary(err)["claimed"] == 0
    assert [c[0] for c in journal(tmp_path)] == ids + ids
    assert pending(r) == []


# -- c. always failing ---------------------------------------------------------------------------


def test_an_entry_that_always_fails_is_dead_lettered_after_max_deliveries_with_the_exception(r, server, tmp_path):
    env = handlers(
        tmp_path,
        broken="""
        from journal import journal


        def process(message_id, message):
            journal(message_id)
            if message["sensor_id"] == "sensor9":
                raise ValueError(f"calibration missing for {message['sensor_id']}")
        """,
    )
    good = add(r, 2)
    [bad] = add(r, 1, sensor="sensor9")

    out, err, code = consume(server, env, "--handler", "broken:process", "--claim-idle", 100, "--max-deliveries", 3)

    assert code == 0, err
    error = "delivered 4 times; last error: ValueError: calibration missing for sensor9"
    assert f"c1: dead-lettered {bad} to {DLQ}: {error}" in err.splitlines()
    for delivery in (1, 2, 3):
        line = f"c1: failed {bad} (delivery {delivery}): ValueError: calibration missing for sensor9; "
        assert line + "left pending for retry" in err.splitlines()
    assert summary(err) == {"processed": 2, "failed": 3, "claimed": 3, "dead-lettered": 1,
                            "trimmed-pending": 0, "trimmed-unread": 0}  # fmt: skip
    # called for each of the 3 deliveries allowed; the 4th is dead-lettered without calling it
    assert Counter(c[0] for c in journal(tmp_path)) == {good[0]: 1, good[1]: 1, bad: 3}
    [letter] = dead_letters(r)
    assert letter[b"sensor_id"] == b"sensor9" and letter[b"temp"] == b"0.0001" and letter[b"humidity"] == b"0.5"
    assert letter[b"dlq.id"].decode() == bad and letter[b"dlq.stream"] == STREAM.encode()
    assert letter[b"dlq.group"] == GROUP.encode() and letter[b"dlq.consumer"] == b"c1"
    assert letter[b"dlq.deliveries"] == b"4" and letter[b"dlq.error"].decode() == error
    assert pending(r) == []


# -- d. Unprocessable --------------------------------------------------------------------------------


def test_unprocessable_is_dead_lettered_at_once_with_its_text(r, server, tmp_path):
    env = handlers(
        tmp_path,
        strict="""
        from journal import journal
        from stream_pubsub import Unprocessable
        from stream_pubsub.reading import check_reading

        KNOWN = {"sensor1", "sensor2"}


        def process(message_id, message):
            journal(message_id)
            sensor_id, temp, humidity = check_reading(message)  # InvalidReading is Unprocessable too
            if sensor_id not in KNOWN:
                raise Unprocessable(f"no such sensor {sensor_id!r}")
        """,
    )
    [good] = add(r, 1)
    [ghost] = add(r, 1, sensor="ghost")
    [hot] = add(r, 1, sensor="sensor2", temp="hot")

    out, err, code = consume(server, env, "--handler", "strict:process", "--claim-idle", 100)

    assert code == 0, err
    assert f"c1: dead-lettered {ghost} to {DLQ}: unprocessable: no such sensor 'ghost'" in err.splitlines()
    assert f"c1: dead-lettered {hot} to {DLQ}: invalid reading: temp is not a number: 'hot'" in err.splitlines()
    assert "failed" not in err.replace("failed 0", "")  # never retried
    assert summary(err) == {"processed": 1, "failed": 0, "claimed": 0, "dead-lettered": 2,
                            "trimmed-pending": 0, "trimmed-unread": 0}  # fmt: skip
    assert [c[0] for c in journal(tmp_path)] == [good, ghost, hot]  # each called once
    letters = {f[b"dlq.id"].decode(): f for f in dead_letters(r)}
    assert letters.keys() == {ghost, hot}
    assert letters[ghost][b"dlq.deliveries"] == b"1" and letters[hot][b"dlq.deliveries"] == b"1"
    assert letters[ghost][b"dlq.error"] == b"unprocessable: no such sensor 'ghost'"
    assert letters[ghost][b"sensor_id"] == b"ghost" and letters[hot][b"temp"] == b"hot"
    assert pending(r) == []


# -- e. undecodable ---------------------------------------------------------------------------------


def test_an_entry_that_is_not_utf8_is_dead_lettered_without_calling_the_handler(r, server, tmp_path):
    env = handlers(
        tmp_path,
        app="""
        from journal import journal


        def process(message_id, message):
            journal(message_id)
        """,
    )
    [before] = add(r, 1)
    bad_value = r.xadd(STREAM, {"sensor_id": "sensor1", "temp": b"\xff\xfe0.5", "humidity": "0.5"}).decode()
    bad_name = r.xadd(STREAM, {b"sensor_id": b"sensor1", b"t\xe9mp": b"0.5"}).decode()
    [after] = add(r, 1)

    out, err, code = consume(server, env, "--handler", "app:process")

    assert code == 0, err
    lines = err.splitlines()
    assert f"c1: dead-lettered {bad_value} to {DLQ}: cannot be decoded: temp is not valid UTF-8" in lines
    assert f"c1: dead-lettered {bad_name} to {DLQ}: cannot be decoded: the name of a field is not valid UTF-8" in lines
    assert summary(err)["processed"] == 2 and summary(err)["dead-lettered"] == 2 and summary(err)["failed"] == 0
    assert [c[0] for c in journal(tmp_path)] == [before, after]  # never called for the two
    letters = {f[b"dlq.id"].decode(): f for f in dead_letters(r)}
    assert letters[bad_value][b"temp"] == b"\xff\xfe0.5"  # the bytes, unchanged
    assert letters[bad_name][b"t\xe9mp"] == b"0.5"
    assert {f[b"dlq.deliveries"] for f in letters.values()} == {b"1"}
    assert pending(r) == []


# -- f. a handler that cannot be used ----------------------------------------------------------------

BAD_HANDLERS = {
    "no colon": ("app", "use module:function, like examples.alerts:process"),
    "no such module": ("nosuchmodule_xyz:process", "no module 'nosuchmodule_xyz' (looked in "),
    "no such package member": ("examples.nosuch:process", "no module 'examples.nosuch' (looked in "),
    "raises at import": ("raising:process", "importing raising failed: RuntimeError: database not configured"),
    "a syntax error": ("broken:process", "importing broken failed: SyntaxError: "),
    "a missing dependency": ("pricing_rules:process",
                             "importing pricing_rules failed: ModuleNotFoundError: No module named 'pricing'"),
    "no such function": ("app:nope", "app has no 'nope'"),
    "not callable": ("app:SETTINGS", "it is a dict, not a function"),
    "one argument": ("app:one", "it cannot be called as one(message_id, message): too many positional arguments"),
    "three arguments": ("app:three", "it cannot be called as three(message_id, message): missing a required"),
}  # fmt: skip

BAD_MODULES = {
    "app": """
    SETTINGS = {"threshold": 0.9}


    def process(message_id, message):
        pass


    def one(message_id):
        pass


    def three(message_id, message, extra):
        pass
    """,
    "raising": 'raise RuntimeError("database not configured")\n',
    "broken": "def process(message_id, message:\n    pass\n",
    "pricing_rules": "import pricing  # not installed\n",
}


@pytest.mark.parametrize("case", BAD_HANDLERS, ids=lambda case: case.replace(" ", "-"))
def test_a_handler_that_cannot_be_used_is_one_line_and_exit_2_before_anything_is_read(r, server, tmp_path, case):
    env = handlers(tmp_path, **BAD_MODULES)
    spec, why = BAD_HANDLERS[case]
    ids = add(r, 3)
    r.xgroup_create(STREAM, GROUP, id="0")

    for how in ("option", "HANDLER"):
        if how == "option":
            done = run("consumer.py", GROUP, "c1", "--handler", spec, "--burst", url=server.url, env=env)
        else:
            done = run("consumer.py", GROUP, "c1", "--burst", url=server.url, env={**env, "HANDLER": spec})

        assert done.returncode == 2, (how, done.stderr)
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert line.startswith(f"Error: --handler {spec}: {why}"), (how, line)

    info = group_info(r)  # nothing read: the group is as it was created
    assert info["last-delivered-id"] == b"0-0" and info["pending"] == 0 and info["consumers"] == 0
    assert r.xinfo_consumers(STREAM, GROUP) == []
    assert [i.decode() for i, _ in r.xrange(STREAM)] == ids
    assert not (tmp_path / "journal.log").exists()


def test_the_handler_env_var_names_the_handler(r, server, tmp_path):
    env = handlers(tmp_path, app="from journal import journal\n\n\ndef process(message_id, message):\n"
                                  "    journal(message_id, 'env')\n")  # fmt: skip
    ids = add(r, 2)

    done = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url,
               env={**env, "HANDLER": "app:process"})  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert journal(tmp_path) == [[ids[0], "env"], [ids[1], "env"]]
    assert summary(done.stderr)["processed"] == 2 and pending(r) == []


# -- g. a handler's return value without --fanout ----------------------------------------------


def test_returning_something_without_fanout_is_a_usage_error_and_nothing_is_acknowledged(r, server, tmp_path):
    env = handlers(
        tmp_path,
        app="""
        from journal import journal


        def process(message_id, message):
            journal(message_id)
            return {"alert": message_id}
        """,
    )
    ids = add(r, 3)
    r.xgroup_create(STREAM, GROUP, id="0")

    done = run("consumer.py", GROUP, "c1", "--handler", "app:process", "--burst", url=server.url, env=env,
               timeout=TIMEOUT)  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"Error: the handler returned dict {{'alert': '{ids[0]}'}}, but there is no --fanout to add it to: "
        "pass --fanout STREAM, or return None"
    ]
    assert [c[0] for c in journal(tmp_path)] == [ids[0]]  # stopped on its first return
    rows = pending(r)  # delivered, never acknowledged: the next consumer gets them again
    assert ids[0] in {row["message_id"].decode() for row in rows}
    assert group_info(r)["pending"] == len(rows) >= 1
    assert r.xlen(DLQ) == 0 and r.keys("*") == [STREAM.encode()]


def test_returning_something_that_is_not_an_entry_is_a_failed_delivery(r, server, tmp_path):
    env = handlers(tmp_path, app="def process(message_id, message):\n    return 'oops'\n")
    [entry_id] = add(r, 1)

    out, err, code = consume(server, env, "--handler", "app:process", "--fanout", "app:out", "--claim-idle", 100,
                             "--max-deliveries", 1)  # fmt: skip

    assert code == 0, err
    why = "the handler returned str oops; return a non-empty dict, a list of them or None"
    assert f"c1: failed {entry_id} (delivery 1): {why}; left pending for retry" in err.splitlines()
    [letter] = dead_letters(r)
    assert letter[b"dlq.error"].decode() == f"delivered 2 times; last error: {why}"
    assert r.xlen("app:out") == 0 and pending(r) == []


def test_a_field_value_that_is_not_str_bytes_or_a_number_is_a_failed_delivery_not_a_crash(r, server, tmp_path):
    """True is an int to Python but has no wire form: refused like None, before anything is sent."""
    env = handlers(tmp_path, app="def process(message_id, message):\n    return [{'hot': 'yes'}, {'hot': True}]\n")
    [entry_id] = add(r, 1)

    out, err, code = consume(server, env, "--handler", "app:process", "--fanout", "app:out", "--claim-idle", 100,
                             "--max-deliveries", 1)  # fmt: skip

    assert code == 0, err
    why = "the handler returned a field 'hot': True; names and values are str, bytes or numbers"
    assert f"c1: failed {entry_id} (delivery 1): {why}; left pending for retry" in err.splitlines()
    assert [f[b"dlq.error"].decode() for f in dead_letters(r)] == [f"delivered 2 times; last error: {why}"]
    assert r.xlen("app:out") == 0 and pending(r) == []  # neither output of the entry: all or nothing


def test_a_fanout_stream_that_is_not_a_stream_is_refused_before_anything_is_read(r, server, tmp_path):
    env = handlers(tmp_path, app="def process(message_id, message):\n    return {'from': message_id}\n")
    add(r, 3)
    r.set("app:out", "not a stream")

    out, err, code = consume(server, env, "--handler", "app:process", "--fanout", "app:out")

    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "Error: --fanout app:out holds a string, not a stream (WRONGTYPE); left untouched"
    ]
    assert r.get("app:out") == b"not a stream" and r.xinfo_groups(STREAM) == []  # nothing read, nothing changed
    assert journal(tmp_path) == []


def test_a_fanout_stream_replaced_mid_run_is_said_and_stops_the_consumer(r, server, tmp_path):
    """The commit script checks the fan-out key before it acknowledges anything: a key replaced by a
    string mid-run refuses the commit whole. The consumer says so and stops; the entries stay
    pending (a MULTI would have run the XACK without the XADD, and lost the outputs)."""
    env = handlers(tmp_path, app=SLOW_OUTPUT)
    add(r, 4)
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", "--count", "2", "--handler", "app:process",
                     "--fanout", "app:out", "--stats-interval", "0", url=server.url, env=env)  # fmt: skip
    wait_for(lambda: len(journal(tmp_path)) >= 1, what="the handler to start")
    r.set("app:out", "a string now")  # while the first entry is in the handler
    out, err = consumer.communicate(timeout=TIMEOUT)
    assert consumer.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "--fanout app:out is no longer a stream" in lines[0] and "WRONGTYPE" in lines[0]
    assert "stay pending, none acknowledged" in lines[0] and "Traceback" not in err
    assert r.get("app:out") == b"a string now"
    first = journal(tmp_path)[0][0]
    info = group_info(r)
    assert first in {p["message_id"].decode() for p in pending(r)}  # the entry in hand: still pending
    assert info["pending"] == info["entries-read"]  # nothing was acknowledged


def test_a_full_redis_refusing_the_fanout_commit_loses_and_doubles_nothing(own_server, tmp_path):
    """OOM: the MULTI of outputs + XACK is refused whole (EXECABORT). Said; the entries stay pending,
    and once Redis has room they are claimed, processed again and committed, each output once."""
    srv = own_server("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    r = redis.Redis.from_url(srv.url)
    env = handlers(tmp_path, app="def process(message_id, message):\n    return {'input': message_id}\n")
    ids = add(r, 40)
    r.xgroup_create(STREAM, GROUP, "0")  # (a full Redis refuses to create a group, but serves one it has)
    filler = fill_up(r)  # Redis at maxmemory: even a small write fails
    log = open(tmp_path / "c1.err", "w")
    args = ["--handler", "app:process", "--fanout", "app:out", "--claim-idle", "300", "--stats-interval", "0"]
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", *args, url=srv.url, env=env, stderr=log)
    log.close()
    wait_for(lambda: "Redis refused to acknowledge" in (tmp_path / "c1.err").read_text(), what="the refusal")
    r.delete(*(f"ballast:{i}" for i in range(filler)))
    wait_for(lambda: r.exists("app:out") and r.xlen("app:out") >= 40 and not pending(r), timeout=20,
             what="the outputs once Redis has room")  # fmt: skip
    stop(consumer)
    err = (tmp_path / "c1.err").read_text()
    assert consumer.returncode == 0 and "Traceback" not in err, err
    assert "they stay pending and are processed again after --claim-idle" in err
    outputs = [fields[b"input"].decode() for _, fields in r.xrange("app:out")]
    assert sorted(outputs) == sorted(ids)  # every input's output, once


# -- h. fan-out exactly once, consumers SIGKILLed all along ----------------------------------------

SLOW_OUTPUT = """
import time
from journal import journal


def process(message_id, message):
    journal(message_id)
    time.sleep(0.5)
    return {"input": message_id}
"""

FANOUT = """
import os
import time
from journal import journal

DELAY = float(os.environ.get("DELAY", "0"))


def process(message_id, message):
    journal(message_id, str(os.getpid()))  # every call: how often an entry was processed again, and by whom
    time.sleep(DELAY)
    out = {"input": message_id, "sensor_id": message["sensor_id"], "part": "0"}
    if message["sensor_id"] == "sensor2":  # a list: several outputs for one input
        return [out, {**out, "part": "1"}]
    return out
"""


@pytest.mark.slow
def test_fanout_outputs_appear_exactly_once_while_consumers_are_killed(r, server, tmp_path):
    env = {**handlers(tmp_path, fan=FANOUT), "DELAY": "0.003"}
    sensors = [f"sensor{i}" for i in range(1, 6)]
    for sensor in sensors:
        sent = run("producer.py", sensor, "--count", 1000, "-q", url=server.url)
        assert sent.returncode == 0, sent.stderr
    inputs = {i.decode(): f[b"sensor_id"].decode() for i, f in r.xrange(STREAM)}
    assert len(inputs) == 5000
    r.xgroup_create(STREAM, GROUP, id="0")

    args = ("--start-from", "0", "--handler", "fan:process", "--fanout", "app:out", "--claim-idle", 500,
            "--max-deliveries", 100, "--count", 20, "--block", 200, "--stats-interval", 0)  # fmt: skip
    logs = []

    def start(name):
        log = open(tmp_path / f"{name}-{len(logs)}.err", "w")
        logs.append(log.name)
        try:
            return spawn("consumer.py", GROUP, name, *args, url=server.url, env=env, stderr=log)
        finally:
            log.close()

    steady = start("steady")
    victim_name, victim = "v0", start("v0")
    started, kills, names = time.monotonic(), 0, {"v0"}
    try:

        def done() -> bool:
            info = group_info(r)
            return info["last-delivered-id"].decode() == max(inputs, key=id_order) and info["pending"] == 0

        def working(pid: int) -> bool:
            return any(line[1:] == [str(pid)] for line in journal(tmp_path))

        while not done() and time.monotonic() - started < 120:
            time.sleep(0.5)
            # On a loaded machine a consumer can take longer than 0.5 s to start: kill it in its work, not before.
            deadline = time.monotonic() + 10
            while not working(victim.pid) and not done() and time.monotonic() < deadline:
                time.sleep(0.05)
            victim.kill()
            victim.wait()
            kills += 1
            if kills % 4 == 0:  # now and then it comes back under a new name: its pending entries are claimed
                victim_name = f"v{kills}"
                names.add(victim_name)
            victim = start(victim_name)
        took = time.monotonic() - started
        assert done(), "the two consumers did not get through the 5,000 readings in 120 s"
        _, err = stop(steady)
        assert steady.returncode == 0, err
        _, err = stop(victim)
    finally:
        for process in (steady, victim):
            if process.poll() is None:
                process.kill()
                process.wait()

    drain = run("consumer.py", GROUP, "drain", *args, "--burst", url=server.url, env=env, timeout=TIMEOUT)
    assert drain.returncode == 0, drain.stderr

    outputs = Counter()
    for _, fields in r.xrange("app:out"):
        outputs[(fields[b"input"].decode(), fields[b"part"].decode())] += 1
    expected = {(i, p) for i, sensor in inputs.items() for p in (("0", "1") if sensor == "sensor2" else ("0",))}
    missing = expected - set(outputs)
    twice = {key: n for key, n in outputs.items() if n > 1}
    calls = Counter(c[0] for c in journal(tmp_path))
    print(
        f"{kills} kills in {took:.1f}s ({len(names)} victim names); {len(inputs)} inputs, handler called "
        f"{sum(calls.values())} times ({sum(1 for n in calls.values() if n > 1)} inputs more than once); "
        f"{sum(outputs.values())} outputs for {len(expected)} expected: missing {len(missing)}, "
        f"duplicated {len(twice)}"
    )
    assert kills >= 10
    assert not missing and not twice and set(outputs) == expected
    assert r.xlen("app:out") == len(expected) == 6000
    assert sum(calls.values()) > len(inputs)  # kills did interrupt batches: entries were processed again
    info = group_info(r)
    assert info["pending"] == 0 and info["last-delivered-id"].decode() == max(inputs, key=id_order)
    assert info.get("lag") in (0, None) and r.xlen(DLQ) == 0
    assert "Traceback" not in "".join(Path(log).read_text() for log in logs)


# -- i. slow work is not stolen --------------------------------------------------------------------

SLOW = """
import os
import time
from journal import journal


def process(message_id, message):
    journal("start", message_id, os.environ["WHO"])
    time.sleep(float(os.environ["SLOW"]))
    journal("done", message_id, os.environ["WHO"])
"""


def max_idle_while(r, busy, timeout: float = 30) -> int:
    """The longest idle time (ms) of any pending entry, sampled until busy() is false (or timeout)."""
    worst, deadline = 0, time.monotonic() + timeout
    while busy() and time.monotonic() < deadline:
        worst = max([worst, *(row["time_since_delivered"] for row in pending(r))])
        time.sleep(0.05)
    return worst


@pytest.mark.slow
def test_a_slow_handler_keeps_its_entries_and_nobody_claims_them(r, server, tmp_path):
    """1.5 s per entry, --claim-idle 1000: without the keeper each entry would be claimed in hand."""
    env = {**handlers(tmp_path, slow=SLOW), "SLOW": "1.5"}
    ids = add(r, 8)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--handler", "slow:process", "--claim-idle", 1000, "--count", 2, "--block", 200, "--stats-interval", 0)

    a = spawn("consumer.py", GROUP, "A", *args, url=server.url, env={**env, "WHO": "A"})
    b = spawn("consumer.py", GROUP, "B", *args, url=server.url, env={**env, "WHO": "B"})
    wait_for(lambda: group_info(r)["last-delivered-id"].decode() == ids[-1], timeout=15, what="all 8 delivered")
    # C only sweeps: everything was delivered already, so it can only get what it claims
    c = spawn("consumer.py", GROUP, "C", *args, url=server.url, env={**env, "WHO": "C"})

    finished = lambda: {call[1] for call in journal(tmp_path) if call[0] == "done"} >= set(ids)  # noqa: E731
    worst = max_idle_while(r, lambda: not finished() or group_info(r)["pending"])
    errs = {name: stop(process)[1] for name, process in (("A", a), ("B", b), ("C", c))}

    calls = journal(tmp_path)
    started = Counter(entry_id for kind, entry_id, _ in calls if kind == "start")
    print(f"{len(ids)} entries, processed {dict(Counter(who for kind, _, who in calls if kind == 'done'))}; "
          f"longest idle seen {worst} ms")  # fmt: skip
    assert started == {entry_id: 1 for entry_id in ids}  # each processed once, by one consumer
    for name, err in errs.items():
        assert summary(err, name)["claimed"] == 0 and summary(err, name)["failed"] == 0, err
    assert summary(errs["C"], "C")["processed"] == 0
    assert sum(summary(errs[name], name)["processed"] for name in "AB") == len(ids)
    assert worst < 1000  # kept fresh: no entry in hand ever looked abandoned
    assert pending(r) == [] and group_info(r)["last-delivered-id"].decode() == ids[-1]


@pytest.mark.slow
def test_a_frozen_consumer_keeps_nothing_fresh_and_its_entries_are_claimed(r, server, tmp_path):
    """The control: the same setup, but A is frozen (SIGSTOP) mid-entry, its keeper thread with it."""
    env = {**handlers(tmp_path, slow=SLOW), "SLOW": "1.5"}
    ids = add(r, 3)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--handler", "slow:process", "--claim-idle", 1000, "--count", 4, "--block", 200, "--stats-interval", 0)

    a = spawn("consumer.py", GROUP, "A", *args, url=server.url, env={**env, "WHO": "A"})
    wait_for(lambda: group_info(r)["pending"] == 3 and journal(tmp_path), what="A holding all 3, working on one")
    a.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        b = spawn("consumer.py", GROUP, "B", *args, url=server.url, env={**env, "WHO": "B", "SLOW": "0.05"})
        wait_for(lambda: pending(r) == [], timeout=10, what="B to claim and process A's entries")
        took = time.monotonic() - frozen
        _, err = stop(b)
    finally:
        a.kill()  # SIGKILL ends a stopped process too
        a.wait()

    calls = journal(tmp_path)
    assert ["start", ids[0], "A"] in calls and ["done", ids[0], "A"] not in calls  # frozen in the middle of it
    assert [c for c in calls if c[2] == "B"] == [[kind, i, "B"] for i in ids for kind in ("start", "done")]
    assert summary(err, "B")["claimed"] == 3 and summary(err, "B")["processed"] == 3
    assert took >= 0.6  # not before --claim-idle (1 s) from A's last refresh, at most 1/3 s before it froze
    # A started ids[0] and B processed it again: what every slow entry would get without the keeper
    assert Counter(i for kind, i, _ in calls if kind == "start")[ids[0]] == 2


@pytest.mark.slow
def test_processed_entries_waiting_for_their_xack_are_kept_fresh_through_the_next_batches(r, server, tmp_path):
    """A restarted with 6 entries of its own pending and --count 2: it re-reads and processes them two
    at a time, acknowledging all at the end. The ones done first wait for that XACK while the later
    batches are processed (2.4 s here): they must not look abandoned meanwhile (idle < --claim-idle)."""
    env = {**handlers(tmp_path, slow=SLOW), "SLOW": "0.6", "WHO": "A"}
    ids = add(r, 6)
    r.xgroup_create(STREAM, GROUP, id="0")
    r.xreadgroup(GROUP, "A", {STREAM: ">"}, count=6)  # A read them, then crashed

    a = spawn("consumer.py", GROUP, "A", "--handler", "slow:process", "--claim-idle", 1000, "--count", 2,
              "--block", 200, "--stats-interval", 0, url=server.url, env=env)  # fmt: skip
    worst = 0
    deadline = time.monotonic() + 20
    while pending(r) and time.monotonic() < deadline:
        done = {call[1] for call in journal(tmp_path) if call[0] == "done"}
        worst = max([worst, *(row["time_since_delivered"] for row in pending(r) if row["message_id"].decode() in done)])
        time.sleep(0.05)
    _, err = stop(a)

    print(f"longest idle of a processed entry waiting for its XACK: {worst} ms")
    assert summary(err, "A")["processed"] == 6 and pending(r) == []
    assert [entry_id for kind, entry_id, _ in journal(tmp_path) if kind == "done"] == ids
    assert worst < 1000


# -- j. the README's example: examples/alerts.py -------------------------------------------------


def test_the_alerts_example_publishes_one_alert_per_hot_reading(r, server):
    for sensor in ("sensor1", "sensor2", "sensor3"):
        assert run("producer.py", sensor, "--count", 200, "-q", url=server.url).returncode == 0
    [poison] = [
        line.split()[1]
        for line in run("producer.py", "sensor4", "--field", "temp=hot", url=server.url).stdout.splitlines()
    ]
    readings = {i.decode(): f for i, f in r.xrange(STREAM)}
    hot = {i for i, f in readings.items() if i != poison and float(f[b"temp"]) > 0.9}
    assert 20 < len(hot) < 100  # 600 random temps in [0, 1)

    done = run("consumer.py", "alerts", "a1", "--handler", "examples.alerts:process", "--fanout", "app:alerts",
               "--start-from", "0", "--burst", url=server.url, timeout=TIMEOUT)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"a1: dead-lettered {poison} to {DLQ}: invalid reading: temp is not a number: 'hot'" in done.stderr
    assert summary(done.stderr, "a1")["processed"] == 600 and summary(done.stderr, "a1")["dead-lettered"] == 1
    alerts = [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in r.xrange("app:alerts")]
    assert len(alerts) == len(hot)
    assert {a["reading_id"] for _, a in alerts} == hot
    for _, alert in alerts:
        reading = readings[alert["reading_id"]]
        assert alert["sensor_id"] == reading[b"sensor_id"].decode() and alert["temp"] == reading[b"temp"].decode()
        assert alert["humidity"] == reading[b"humidity"].decode() and alert["threshold"] == "0.9"
    assert group_info(r, group="alerts")["pending"] == 0

    # a second group reads the alerts; the default consumer prints each (an alert has a reading's fields)
    audit = run("consumer.py", "audit", "u1", "--stream", "app:alerts", "--start-from", "0", "--burst",
                url=server.url, timeout=TIMEOUT)  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.splitlines() == [
        f"{i} {a['sensor_id']} temp={float(a['temp']):.4f} humidity={float(a['humidity']):.4f}" for i, a in alerts
    ]  # (printed to 4 places: a temp of 0.90003 reads 0.9000)
    assert summary(audit.stderr, "u1")["processed"] == len(hot) and r.xlen("app:alerts:dlq") == 0

    # ALERT_TEMP sets the threshold, for another group and its own alert stream
    half = run("consumer.py", "alerts-half", "h1", "--handler", "examples.alerts:process", "--fanout", "app:half",
               "--start-from", "0", "--burst", url=server.url, env={"ALERT_TEMP": "0.5"}, timeout=TIMEOUT)  # fmt: skip
    assert half.returncode == 0, half.stderr
    above = {i for i, f in readings.items() if i != poison and float(f[b"temp"]) > 0.5}
    assert {f[b"reading_id"].decode() for _, f in r.xrange("app:half")} == above
    assert {f[b"threshold"] for _, f in r.xrange("app:half")} == {b"0.5"}
