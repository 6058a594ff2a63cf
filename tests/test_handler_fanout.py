"""A handler's outputs: `consumer.py GROUP CONSUMER --handler module:function --fanout STREAM`.

What the handler returns is added to the fan-out stream in the same script as the XACK of its
input: each input's outputs once, even with consumers SIGKILLed all along; a return value that
cannot be added is a failed delivery (or, without --fanout, a usage error); the README's example,
examples/alerts.py. Handlers are written by each test into tmp_path (see test_handler_results.py).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from conftest import (
    DLQ,
    GROUP,
    STREAM,
    Full,
    add,
    consume,
    dead_letters,
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

    done = run(
        "consumer.py", GROUP, "c1", "--handler", "app:process", "--burst", url=server.url, env=env, timeout=TIMEOUT
    )

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

    out, err, code = consume(
        server, env, "--handler", "app:process", "--fanout", "app:out", "--claim-idle", 100, "--max-deliveries", 1
    )

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

    out, err, code = consume(
        server, env, "--handler", "app:process", "--fanout", "app:out", "--claim-idle", 100, "--max-deliveries", 1
    )

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
    consumer = spawn(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--count",
        "2",
        "--handler",
        "app:process",
        "--fanout",
        "app:out",
        "--stats-interval",
        "0",
        url=server.url,
        env=env,
    )
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
    full = Full(r)  # Redis at maxmemory: even a small write fails
    log = open(tmp_path / "c1.err", "w")
    args = ["--handler", "app:process", "--fanout", "app:out", "--claim-idle", "300", "--stats-interval", "0"]
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", *args, url=srv.url, env=env, stderr=log)
    log.close()
    refused = full.still(lambda: "Redis refused to acknowledge" in (tmp_path / "c1.err").read_text())
    wait_for(refused, what="the refusal")
    full.make_room()
    wait_for(
        lambda: r.exists("app:out") and r.xlen("app:out") >= 40 and not pending(r),
        timeout=20,
        what="the outputs once Redis has room",
    )
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
@pytest.mark.parametrize("concurrency", [1, 16])
def test_fanout_outputs_appear_exactly_once_while_consumers_are_killed(r, server, tmp_path, concurrency):
    env = {**handlers(tmp_path, fan=FANOUT), "DELAY": "0.003"}
    sensors = [f"sensor{i}" for i in range(1, 6)]
    for sensor in sensors:
        sent = run("producer.py", sensor, "--count", 1000, "-q", url=server.url)
        assert sent.returncode == 0, sent.stderr
    inputs = {i.decode(): f[b"sensor_id"].decode() for i, f in r.xrange(STREAM)}
    assert len(inputs) == 5000
    r.xgroup_create(STREAM, GROUP, id="0")

    args = (
        "--start-from",
        "0",
        "--handler",
        "fan:process",
        "--fanout",
        "app:out",
        "--claim-idle",
        500,
        "--max-deliveries",
        100,
        "--count",
        20,
        "--block",
        200,
        "--stats-interval",
        0,
        "--concurrency",
        concurrency,
    )
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

    done = run(
        "consumer.py",
        "alerts",
        "a1",
        "--handler",
        "examples.alerts:process",
        "--fanout",
        "app:alerts",
        "--start-from",
        "0",
        "--burst",
        url=server.url,
        timeout=TIMEOUT,
    )

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
    audit = run(
        "consumer.py",
        "audit",
        "u1",
        "--stream",
        "app:alerts",
        "--start-from",
        "0",
        "--burst",
        url=server.url,
        timeout=TIMEOUT,
    )
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.splitlines() == [
        f"{i} {a['sensor_id']} temp={float(a['temp']):.4f} humidity={float(a['humidity']):.4f}" for i, a in alerts
    ]  # (printed to 4 places: a temp of 0.90003 reads 0.9000)
    assert summary(audit.stderr, "u1")["processed"] == len(hot) and r.xlen("app:alerts:dlq") == 0

    # ALERT_TEMP sets the threshold, for another group and its own alert stream
    half = run(
        "consumer.py",
        "alerts-half",
        "h1",
        "--handler",
        "examples.alerts:process",
        "--fanout",
        "app:half",
        "--start-from",
        "0",
        "--burst",
        url=server.url,
        env={"ALERT_TEMP": "0.5"},
        timeout=TIMEOUT,
    )
    assert half.returncode == 0, half.stderr
    above = {i for i, f in readings.items() if i != poison and float(f[b"temp"]) > 0.5}
    assert {f[b"reading_id"].decode() for _, f in r.xrange("app:half")} == above
    assert {f[b"threshold"] for _, f in r.xrange("app:half")} == {b"0.5"}
