"""producer.py as the tutorial's reader runs it: what it prints, and what the stream holds after.

python producer.py sensor1
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest
import redis
from conftest import ROOT, STREAM, id_order, run, script_env, sent_ids, sent_summary, spawn, stop, wait_for

NOT_GREATER = (
    "Error: ID {} is not greater than the last ID in the stream; a manual ID must be greater than every ID before it"
)


def stored_ids(r, stream: str = STREAM) -> list[str]:
    return [entry_id.decode() for entry_id, _ in r.xrange(stream)]


def test_one_reading_as_in_the_tutorial(r, server):
    sent = run("producer.py", "sensor1", url=server.url)

    assert sent.returncode == 0, sent.stderr
    assert sent.stderr == ""
    [entry_id] = sent_ids(sent.stdout)
    [(stored_id, fields)] = r.xrange(STREAM)
    assert stored_id.decode() == entry_id
    assert set(fields) == {b"sensor_id", b"temp", b"humidity"}
    assert fields[b"sensor_id"] == b"sensor1"
    temp, humidity = float(fields[b"temp"]), float(fields[b"humidity"])
    assert 0 <= temp < 1 and 0 <= humidity < 1

    again = run("producer.py", "sensor2", url=server.url)
    assert again.returncode == 0, again.stderr
    [second_id] = sent_ids(again.stdout)
    assert id_order(second_id) > id_order(entry_id)  # auto IDs only grow
    assert stored_ids(r) == [entry_id, second_id]
    assert r.xrange(STREAM)[1][1][b"sensor_id"] == b"sensor2"
    assert r.xrange(STREAM)[1][1][b"temp"] != fields[b"temp"]  # random, not a constant


def test_count_sends_n_readings_and_prints_the_ids_the_stream_holds(r, server):
    # 2,500 crosses the producer's pipelined batches of 1,000.
    sent = run("producer.py", "sensor2", "--count", 2500, url=server.url)

    assert sent.returncode == 0, sent.stderr
    ids = sent_ids(sent.stdout)
    assert len(ids) == 2500 == len(set(ids))
    assert stored_ids(r) == ids
    assert {fields[b"sensor_id"] for _, fields in r.xrange(STREAM)} == {b"sensor2"}
    assert sent_summary(sent.stderr) == (2500, "sensor2", STREAM, "")


def test_stream_and_redis_url_come_from_options_or_environment(r, server):
    by_option = run("producer.py", "sensor1", "--stream", "plant:a", "--redis-url", server.url, url=None)
    by_env = run("producer.py", "sensor1", url=server.url, env={"STREAM_KEY": "plant:b"})

    assert by_option.returncode == 0 and by_env.returncode == 0, (by_option.stderr, by_env.stderr)
    assert stored_ids(r, "plant:a") == sent_ids(by_option.stdout)
    assert stored_ids(r, "plant:b") == sent_ids(by_env.stdout)
    assert not r.exists(STREAM)


@pytest.mark.parametrize("count", [1, 5, 1500])
def test_quiet_prints_no_line_per_reading_and_one_summary(r, server, count):
    sent = run("producer.py", "sensor1", "--count", count, "-q", url=server.url)

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == ""
    assert len(sent.stderr.splitlines()) == 1
    assert sent_summary(sent.stderr) == (count, "sensor1", STREAM, "")
    assert r.xlen(STREAM) == count


def test_interval_waits_between_readings(r, server):
    started = time.monotonic()
    sent = run("producer.py", "sensor1", "--count", 4, "--interval", 0.2, url=server.url)
    elapsed = time.monotonic() - started

    assert sent.returncode == 0, sent.stderr
    ids = sent_ids(sent.stdout)
    assert stored_ids(r) == ids and len(ids) == 4
    # Redis stamps each ID with its own clock in ms: consecutive readings are >= 200 ms apart.
    stamps = [id_order(i)[0] for i in ids]
    assert all(b - a >= 199 for a, b in zip(stamps, stamps[1:])), stamps
    assert elapsed >= 0.6
    assert sent_summary(sent.stderr) == (4, "sensor1", STREAM, "")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("interval", ["0.02", None], ids=["interval", "no-interval"])
def test_count_0_sends_until_stopped_then_exits_0_with_a_summary(r, server, tmp_path, sig, interval):
    out = open(tmp_path / "out", "w+")
    args = ["sensor3", "--count", 0] + (["--interval", interval] if interval else [])
    producer = spawn("producer.py", *args, url=server.url, stdout=out)
    wait_for(lambda: r.xlen(STREAM) >= 10, what="10 readings")
    seen = r.xlen(STREAM)
    wait_for(lambda: r.xlen(STREAM) > seen, what="more readings: it is not a fixed count")
    assert producer.poll() is None

    signalled = time.monotonic()
    _, err = stop(producer, sig)
    assert time.monotonic() - signalled < 1.5
    assert producer.returncode == 0, err
    out.seek(0)
    ids = sent_ids(out.read())
    assert len(ids) > 10
    assert stored_ids(r) == ids  # every reading stored was reported, and only those
    assert sent_summary(err) == (len(ids), "sensor3", STREAM, "")
    assert "Traceback" not in err
    time.sleep(0.1)
    assert r.xlen(STREAM) == len(ids)  # nothing sent after it exited


def test_ctrl_c_during_a_long_interval_stops_at_once(r, server, tmp_path):
    """Ctrl-C does not wait out --interval: the producer stops within a moment, exit 0."""
    out = open(tmp_path / "out", "w+")
    producer = spawn("producer.py", "sensor1", "--count", 0, "--interval", 30, url=server.url, stdout=out)
    wait_for(lambda: r.xlen(STREAM) == 1, what="the first reading")
    wait_for(lambda: (tmp_path / "out").read_text(), what="the first reading said: now in the 30 s wait")

    signalled = time.monotonic()
    _, err = stop(producer, signal.SIGINT)
    assert time.monotonic() - signalled < 1.5
    assert producer.returncode == 0, err
    out.seek(0)
    assert sent_ids(out.read()) == stored_ids(r) and r.xlen(STREAM) == 1
    assert sent_summary(err) == (1, "sensor1", STREAM, "")


def test_maxlen_exact_caps_the_stream_at_n(r, server):
    sent = run("producer.py", "sensor1", "--count", 300, "--maxlen", 10, "--exact", url=server.url)

    assert sent.returncode == 0, sent.stderr
    ids = sent_ids(sent.stdout)
    assert len(ids) == 300
    assert r.xlen(STREAM) == 10
    assert stored_ids(r) == ids[-10:]  # the newest ten stay


def test_maxlen_exact_on_every_add_one_at_a_time(r, server):
    for _ in range(3):
        sent = run("producer.py", "sensor1", "--maxlen", 2, "--exact", url=server.url)
        assert sent.returncode == 0, sent.stderr
    assert r.xlen(STREAM) == 2
    interval = run("producer.py", "sensor1", "--count", 5, "--interval", 0.01, "--maxlen", 3, "--exact", url=server.url)
    assert interval.returncode == 0, interval.stderr
    assert stored_ids(r) == sent_ids(interval.stdout)[-3:]


def test_maxlen_is_approximate_by_default(own_server):
    # One radix-tree node holds exactly 100 entries here (no byte limit), so what `MAXLEN ~ 10`
    # keeps is predictable: Redis drops whole nodes only, never fewer entries than the cap.
    server = own_server("--stream-node-max-entries", "100", "--stream-node-max-bytes", "0")
    r = redis.Redis.from_url(server.url)

    sent = run("producer.py", "sensor1", "--count", 300, "--maxlen", 10, url=server.url)
    assert sent.returncode == 0, sent.stderr
    ids = sent_ids(sent.stdout)
    assert len(ids) == 300
    assert r.xlen(STREAM) == 100  # whole nodes trimmed: >= 10, and not exact
    assert stored_ids(r) == ids[-100:]

    one_by_one = run(
        "producer.py",
        "sensor1",
        "--count",
        150,
        "--interval",
        0.0001,
        "--maxlen",
        10,
        "-q",
        url=server.url,
        env={"STREAM_KEY": "one:by:one"},
    )
    assert one_by_one.returncode == 0, one_by_one.stderr
    assert r.xlen("one:by:one") == 50  # 150 added, the first full node of 100 dropped

    by_env = run(
        "producer.py",
        "sensor1",
        "--count",
        300,
        "--exact",
        "-q",
        url=server.url,
        env={"STREAM_KEY": "capped", "STREAM_MAXLEN": "10"},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert r.xlen("capped") == 10
    r.close()


def test_id_sets_the_entry_id(r, server):
    first = run("producer.py", "sensor1", "--id", "1700000000000-5", url=server.url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "message 1700000000000-5 sent\n"

    auto_sequence = run("producer.py", "sensor1", "--id", "1700000000001-*", url=server.url)
    assert auto_sequence.returncode == 0, auto_sequence.stderr
    assert auto_sequence.stdout == "message 1700000000001-0 sent\n"

    assert stored_ids(r) == ["1700000000000-5", "1700000000001-0"]
    assert r.xrange(STREAM)[0][1][b"sensor_id"] == b"sensor1"


@pytest.mark.parametrize("entry_id", ["1700000000001-0", "1700000000000-9", "1700000000001", "5-0"])
def test_id_not_greater_than_the_last_is_one_clear_error(r, server, entry_id):
    r.xadd(STREAM, {"sensor_id": "sensor1", "temp": "0.5", "humidity": "0.5"}, id="1700000000001-0")

    sent = run("producer.py", "sensor1", "--id", entry_id, url=server.url)

    assert sent.returncode == 1
    assert sent.stdout == ""
    assert sent.stderr.splitlines() == [NOT_GREATER.format(entry_id)]
    assert stored_ids(r) == ["1700000000001-0"]


def test_id_0_0_is_refused(r, server):
    sent = run("producer.py", "sensor1", "--id", "0-0", url=server.url)

    assert sent.returncode == 1
    assert sent.stderr.splitlines() == ["Error: ID 0-0 is not allowed; the smallest ID is 0-1"]
    assert r.dbsize() == 0


def test_id_goes_with_one_reading_only(r, server):
    sent = run("producer.py", "sensor1", "--id", "1700000000000-1", "--count", 2, url=server.url)

    assert sent.returncode == 2
    assert "Error: --id sets the ID of one reading; use it with --count 1" in sent.stderr.splitlines()
    assert r.dbsize() == 0


MAX = 2**64 - 1


@pytest.mark.parametrize(
    "entry_id, why",
    [
        (f"{MAX}-{MAX}", f"{MAX} is the last millisecond an ID can have: no later entry could be added"),
        (f"{MAX}-0", f"{MAX} is the last millisecond an ID can have: no later entry could be added"),
        (f"{MAX}-*", f"{MAX} is the last millisecond an ID can have: no later entry could be added"),
        (f"5-{MAX}", f"{MAX} is the largest sequence there is: no later entry could be added in millisecond 5"),
        (f"{MAX + 1}-0", f"{MAX + 1} is over {MAX}, the largest number an ID can hold"),
        (f"1-{MAX + 1}", f"{MAX + 1} is over {MAX}, the largest number an ID can hold"),
        ("99999999999999999999999", f"99999999999999999999999 is over {MAX}, the largest number an ID can hold"),
    ],
    ids=["last-ms-last-seq", "last-ms", "last-ms-auto-seq", "last-seq", "ms-over", "seq-over", "ms-alone-over"],
)
def test_an_id_with_no_room_after_it_is_a_usage_error(r, server, entry_id, why):
    sent = run("producer.py", "sensor1", "--id", entry_id, url=server.url)

    assert sent.returncode == 2
    assert sent.stdout == ""
    [error] = [line for line in sent.stderr.splitlines() if line.startswith("Error")]
    assert error.startswith(f"Error: Invalid value for '--id': {entry_id}: {why}"), error
    assert "Traceback" not in sent.stderr
    assert r.dbsize() == 0


def test_an_id_far_in_the_future_is_sent_with_a_warning(r, server):
    in_three_days = int(time.time() * 1000) + 3 * 86_400_000 + 60_000
    sent = run("producer.py", "sensor1", "--id", f"{in_three_days}-0", url=server.url)

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == f"message {in_three_days}-0 sent\n"
    assert sent.stderr.splitlines() == [
        f"warning: ID {in_three_days}-0 is 3 days in the future: every later entry will get an ID after it"
    ]
    assert stored_ids(r) == [f"{in_three_days}-0"]

    tomorrow = run("producer.py", "sensor1", "--id", f"{in_three_days + 1}-0", "--stream", "soon", url=server.url)
    assert tomorrow.returncode == 0 and "future" in tomorrow.stderr
    near = int(time.time() * 1000) + 3_600_000  # an hour ahead: no warning
    assert run("producer.py", "sensor1", "--id", f"{near}-0", "--stream", "near", url=server.url).stderr == ""
    assert r.xlen("soon") == r.xlen("near") == 1


def test_help_states_the_id_bounds_and_h_is_help():
    long, short = run("producer.py", "--help"), run("producer.py", "-h")

    assert long.returncode == short.returncode == 0
    assert short.stdout == long.stdout
    text = " ".join(long.stdout.split())
    assert "Each number at most 2**64-1; the milliseconds below it and the sequence too" in text
    assert "More than a day ahead of now: said, and sent." in text
    assert "while Redis is down or full it stops at once, saying what was stored and what was not, exit 1" in text


def test_a_long_run_shows_progress_on_a_terminal_only(r, server):
    """stderr a terminal: a progress line rewritten in place, gone before the summary. In a pipe
    (the other tests): the summary alone."""
    leader, follower = pty.openpty()
    producer = subprocess.Popen(
        [sys.executable, str(ROOT / "producer.py"), "sensor1", "--count", "20000", "-q"],
        cwd=ROOT,
        env=script_env(server.url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the producer closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert producer.wait(30) == 0
    assert producer.stdout.read() == ""
    lines = seen.decode().replace("\r\n", "\n").rstrip("\n").split("\n")  # the terminal writes \n as \r\n
    assert len(lines) == 1, lines
    # Progress lines, each rewritten in place (\r), then blanked, then the summary on the same line.
    shown, _, last = lines[0].rpartition("\r")
    assert re.fullmatch(r"(\rsent [\d,]+ of 20,000 readings \(\d+%\) *)+\r *", shown), shown
    assert sent_summary(last) == (20_000, "sensor1", STREAM, "")
    assert r.xlen(STREAM) == 20_000

    piped = run("producer.py", "sensor1", "--count", 20_000, "-q", url=server.url)
    assert "\r" not in piped.stderr and sent_summary(piped.stderr) == (20_000, "sensor1", STREAM, "")
    assert r.xlen(STREAM) == 40_000
