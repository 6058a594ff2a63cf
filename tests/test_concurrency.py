"""Real handlers: many entries at once (--concurrency), in order per sensor (--order-by), failures
retried with a backoff (--retry-delays). The journal records each call's start and end, with the
time and the thread, so a test sees what ran at once and in which order."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter, defaultdict

import pytest
from conftest import handlers, journal, run, spawn, stop, wait_for

STREAM, GROUP, DLQ = "app:event", "group1", "app:event:dlq"
TIMEOUT = 60

TIMED = """
import os
import random
import time
from journal import journal

DELAY = float(os.environ.get("DELAY", "0.01"))


def process(message_id, message):
    journal("start", message_id, message["sensor_id"], repr(time.monotonic()))
    time.sleep(random.uniform(0, DELAY))
    journal("end", message_id, message["sensor_id"], repr(time.monotonic()))
"""


def add(r, sensors: list[str], each: int) -> list[str]:
    """`each` readings of every sensor, interleaved: s1, s2, ..., s1, s2, ..."""
    pipe = r.pipeline(transaction=False)
    for i in range(each):
        for sensor in sensors:
            pipe.xadd(STREAM, {"sensor_id": sensor, "temp": f"0.{i + 1:04d}", "humidity": "0.5"})
    return [entry_id.decode() for entry_id in pipe.execute()]


def consume(server, env, *args, name="c1", timeout=TIMEOUT):
    done = run("consumer.py", GROUP, name, "--start-from", "0", "--burst", "--stats-interval", 0, *args,
               url=server.url, env=env, timeout=timeout)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_sixteen_at_once_each_sensors_entries_one_at_a_time_in_stream_order(r, server, tmp_path):
    env = {**handlers(tmp_path, app=TIMED), "DELAY": "0.02"}
    sensors = [f"sensor{i}" for i in range(40)]
    ids = add(r, sensors, 10)

    done = consume(server, env, "--handler", "app:process", "--concurrency", 16)

    assert done.returncode == 0, done.stderr
    calls = journal(tmp_path)
    events = sorted(((float(t), kind, entry, sensor) for kind, entry, sensor, t in calls), key=lambda e: e[0])
    running, most, at_once = defaultdict(int), 0, 0
    order = defaultdict(list)
    for _, kind, entry, sensor in events:
        if kind == "start":
            running[sensor] += 1
            at_once += 1
            assert running[sensor] == 1, f"two calls of {sensor} at once"
            order[sensor].append(entry)
        else:
            running[sensor] -= 1
            at_once -= 1
        most = max(most, at_once)
    assert most > 8, f"at most {most} calls at once: not concurrent"
    by_id = {entry_id: i for i, entry_id in enumerate(ids)}
    for sensor, entries in order.items():
        assert entries == sorted(entries, key=by_id.__getitem__), f"{sensor} out of stream order"
    assert Counter(entry for kind, entry, *_ in calls if kind == "end") == Counter(ids)  # each once
    assert group_info(r)["pending"] == 0 and re.search(r"processed 400, failed 0", done.stderr)


def group_info(r) -> dict:
    return next(g for g in r.xinfo_groups(STREAM) if g["name"] == GROUP.encode())


FAILS_TWICE = """
import os
from journal import journal

SENSOR = os.environ.get("FAILING", "")


def process(message_id, message):
    journal(message_id, message["sensor_id"])
    if message["sensor_id"] == SENSOR or not SENSOR:
        tries = sum(1 for line in open(os.environ["JOURNAL"]) if line.split()[0] == message_id)
        if tries <= 2:
            raise RuntimeError(f"try {tries}")
"""


def test_a_failed_entry_is_retried_here_after_its_delays_with_three_deliveries(r, server, tmp_path):
    """It fails twice, then succeeds: --retry-delays 300,300 retries it after 0.3 s twice, long before
    --claim-idle (60 s); its delivery count grows in Redis as with any redelivery."""
    env = handlers(tmp_path, app=FAILS_TWICE)
    ids = add(r, ["sensor1", "sensor2"], 5)
    started = time.monotonic()

    done = consume(server, env, "--handler", "app:process", "--retry-delays", "300,300", "--claim-idle", 60_000)

    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert took < 30  # (not --claim-idle's 60 s: a bound for a hang, not a speed measure)
    tries = Counter(entry for entry, _ in journal(tmp_path))
    assert tries == Counter({entry_id: 3 for entry_id in ids})
    failures = re.findall(r"c1: failed (\S+) \(delivery (\d)\): RuntimeError: try \d; retried in 0\.3s", done.stderr)
    assert Counter(entry for entry, _ in failures) == Counter({entry_id: 2 for entry_id in ids})
    assert {delivery for _, delivery in failures} == {"1", "2"}
    assert re.search(r"processed 10, failed 20, claimed 0, dead-lettered 0", done.stderr)
    assert group_info(r)["pending"] == 0 and not r.exists(DLQ)


def test_a_retried_sensor_holds_its_later_entries_back_while_the_others_flow(r, server, tmp_path):
    env = {**handlers(tmp_path, app=FAILS_TWICE), "FAILING": "sensor1"}
    ids = add(r, ["sensor1", "sensor2", "sensor3"], 4)

    done = consume(server, env, "--handler", "app:process", "--retry-delays", "500", "--concurrency", 4)

    assert done.returncode == 0, done.stderr
    calls = journal(tmp_path)
    mine = [entry for entry in ids if entry in {e for e, sensor in calls if sensor == "sensor1"}]
    # each of sensor1's readings fails twice, then succeeds; the next waits for it: a, a, a, b, b, b, ...
    assert [entry for entry, sensor in calls if sensor == "sensor1"] == [e for e in mine for _ in range(3)]
    second = next(i for i, (entry, _) in enumerate(calls) if entry == mine[1])
    others = [i for i, (_, sensor) in enumerate(calls) if sensor != "sensor1"]
    assert len(others) == 8 and max(others) < second  # the other sensors went on while sensor1 waited
    assert re.search(r"processed 12, failed 8", done.stderr)  # sensor1's 4 readings failed twice each
    assert group_info(r)["pending"] == 0


def test_always_failing_with_retries_is_dead_lettered_after_max_deliveries_and_frees_its_sensor(r, server, tmp_path):
    source = """
from journal import journal


def process(message_id, message):
    journal(message_id, message["sensor_id"])
    if message["temp"] == "0.0001":
        raise ValueError("never")
"""
    env = handlers(tmp_path, app=source)
    ids = add(r, ["sensor1"], 3)

    done = consume(server, env, "--handler", "app:process", "--retry-delays", "100", "--max-deliveries", 3)

    assert done.returncode == 0, done.stderr
    assert [entry for entry, _ in journal(tmp_path)] == [ids[0]] * 3 + ids[1:]
    [(_, letter)] = r.xrange(DLQ)
    assert letter[b"dlq.id"].decode() == ids[0] and letter[b"dlq.deliveries"] == b"4"
    assert b"ValueError: never" in letter[b"dlq.error"]
    assert group_info(r)["pending"] == 0


ASYNC = """
import asyncio
from journal import journal
from stream_pubsub import Unprocessable


async def process(message_id, message):
    await asyncio.sleep(0.01)
    journal(message_id, message["temp"])
    if message["temp"] == "0.0002":
        raise Unprocessable("poison")
    if message["temp"] == "0.0003":
        raise RuntimeError("once")
    return {"input": message_id}
"""


def test_an_async_handler_returns_outputs_raises_and_dead_letters(r, server, tmp_path):
    env = handlers(tmp_path, app=ASYNC)
    ids = add(r, ["sensor1"], 5)
    args = ("--handler", "app:process", "--fanout", "app:out", "--concurrency", 100, "--order-by", "")

    first = consume(server, env, *args, "--claim-idle", 100, "--max-deliveries", 2)

    assert first.returncode == 0, first.stderr
    outputs = sorted(fields[b"input"].decode() for _, fields in r.xrange("app:out"))
    assert outputs == sorted([ids[0], ids[3], ids[4]])  # the poison and the failing one add nothing
    [(_, letter)] = [e for e in r.xrange(DLQ) if e[1][b"dlq.id"].decode() == ids[1]]
    assert letter[b"dlq.error"] == b"unprocessable: poison"
    assert re.search(rf"c1: failed {ids[2]} \(delivery 1\): RuntimeError: once; left pending for retry", first.stderr)


SLEEPS = """
import time
from journal import journal


def process(message_id, message):
    journal("start", message_id)
    time.sleep(1)
    journal("end", message_id)
"""


def test_ctrl_c_with_32_in_the_handler_lets_them_finish_and_acknowledges_them(r, server, tmp_path):
    env = handlers(tmp_path, app=SLEEPS)
    add(r, [f"sensor{i}" for i in range(100)], 1)
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", "--concurrency", 32, "--handler", "app:process",
                     "--stats-interval", 0, url=server.url, env=env)  # fmt: skip
    wait_for(lambda: sum(1 for line in journal(tmp_path) if line[0] == "start") >= 32, what="32 in the handler")
    _, err = stop(consumer, signal.SIGINT, timeout=20)

    assert consumer.returncode == 0, err
    calls = journal(tmp_path)
    started = {entry for kind, entry in calls if kind == "start"}
    ended = {entry for kind, entry in calls if kind == "end"}
    assert started == ended and len(started) >= 32  # none cut off, and no new one began after Ctrl-C
    pending = {p["message_id"].decode() for p in r.xpending_range(STREAM, GROUP, "-", "+", 1000)}
    assert not pending & ended  # what finished is acknowledged; what never began stays pending
    assert re.search(rf"c1: stopped after \d+\.\ds: processed {len(ended)}, ", err)


def test_a_second_ctrl_c_quits_at_once_and_leaves_what_was_in_the_handler_pending(r, server, tmp_path):
    env = handlers(tmp_path, app=SLEEPS.replace("time.sleep(1)", "time.sleep(30)"))
    add(r, [f"sensor{i}" for i in range(10)], 1)
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", "--concurrency", 8, "--handler", "app:process",
                     "--stats-interval", 0, url=server.url, env=env)  # fmt: skip
    wait_for(lambda: sum(1 for line in journal(tmp_path) if line[0] == "start") >= 8, what="8 in the handler")
    consumer.send_signal(signal.SIGINT)
    time.sleep(0.3)  # (the first is only a flag: give its line time to be written)
    _, err = stop(consumer, signal.SIGINT, timeout=10)
    assert consumer.returncode == 130, err
    assert "quit at once; unacknowledged entries stay pending" in err
    assert group_info(r)["pending"] == 10


@pytest.mark.parametrize(
    "args, said",
    [
        (("--concurrency", "0"), "--concurrency"),
        (("--concurrency", "1001"), "--concurrency"),
        (("--retry-delays", "1000,soon"), "--retry-delays"),
        (("--retry-delays", "0"), "--retry-delays"),
    ],
)
def test_a_bad_concurrency_or_retry_delays_is_one_line_and_exit_2(r, server, args, said):
    done = run("consumer.py", GROUP, "c1", *args, url=server.url)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for")
    assert not r.exists(STREAM)  # refused before anything is read
