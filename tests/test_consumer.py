"""consumer.py as the tutorial's reader runs it: what it prints, and what the group holds after.

python consumer.py group1 c1
"""

from __future__ import annotations

import signal
import time

import pytest
from conftest import (
    DLQ,
    GROUP,
    STREAM,
    add,
    group_info,
    pending_ids,
    processed,
    run,
    spawn,
    stop,
    summary,
    wait_blocked,
    wait_for,
)

BURST_TIMEOUT = 20  # a --burst run that hangs fails instead of waiting for the suite's timeout


def test_group_is_created_once_at_the_end_of_the_stream_by_default(r, server):
    before = add(r, 3)

    first = run("consumer.py", GROUP, "c1", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # `$`: entries already in the stream are not processed, and that is said
    assert (
        f"created group {GROUP} on {STREAM}, starting at $: the 3 entries already there are skipped "
        "(--start-from 0 reads them)"
    ) in first.stderr.splitlines()
    assert summary(first.stderr)["processed"] == 0
    info = group_info(r)
    assert info["last-delivered-id"].decode() == before[-1]
    assert info["pending"] == 0

    after = add(r, 2, sensor="sensor2")
    second = run("consumer.py", GROUP, "c1", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert second.returncode == 0, second.stderr
    assert processed(second.stdout) == after
    assert "created group" not in second.stderr  # the group existed: left as it was
    assert "--start-from" not in second.stderr  # (not given: nothing to say about it)
    assert [g["name"] for g in r.xinfo_groups(STREAM)] == [GROUP.encode()]
    assert group_info(r)["last-delivered-id"].decode() == after[-1]
    assert pending_ids(r) == []
    assert r.xlen(STREAM) == 5  # reading does not remove entries


def test_start_from_on_an_existing_group_is_said_to_do_nothing(r, server):
    add(r, 3)
    r.xgroup_create(STREAM, GROUP, id="$")

    done = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the group kept its position: nothing read
    assert (
        f"group {GROUP} exists on {STREAM} and keeps its position: --start-from only places a new group "
        f"(to move it: python admin.py group rewind {GROUP} 0)"
    ) in done.stderr.splitlines()
    assert group_info(r)["last-delivered-id"] == r.xrevrange(STREAM, count=1)[0][0]


def test_group_on_a_stream_that_does_not_exist_yet(r, server):
    first = run("consumer.py", GROUP, "c1", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert first.returncode == 0, first.stderr
    assert r.type(STREAM) == b"stream" and r.xlen(STREAM) == 0  # MKSTREAM
    ids = add(r, 2)
    second = run("consumer.py", GROUP, "c1", "--burst", url=server.url, timeout=BURST_TIMEOUT)
    assert processed(second.stdout) == ids


def test_start_from_0_processes_the_history_line_by_line(r, server):
    ids = [
        r.xadd(STREAM, {"sensor_id": "sensor1", "temp": "0.53", "humidity": "0.12"}).decode(),
        r.xadd(STREAM, {"sensor_id": "sensor2", "temp": "21.04567", "humidity": "0.5"}).decode(),
        r.xadd(STREAM, {"sensor_id": "sensor3", "temp": "1e-3", "humidity": "7"}).decode(),
    ]

    got = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == [
        f"{ids[0]} sensor1 temp=0.5300 humidity=0.1200",
        f"{ids[1]} sensor2 temp=21.0457 humidity=0.5000",
        f"{ids[2]} sensor3 temp=0.0010 humidity=7.0000",
    ]
    assert f"created group {GROUP} on {STREAM}, starting at 0" in got.stderr.splitlines()
    assert summary(got.stderr)["processed"] == 3
    info = group_info(r)
    assert info["last-delivered-id"].decode() == ids[-1]
    assert info["pending"] == 0
    assert info["entries-read"] == 3


def test_start_from_0_again_never_rewinds_the_group(r, server):
    ids = add(r, 5)
    first = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)
    assert processed(first.stdout) == ids
    before = group_info(r)

    again = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert again.returncode == 0, again.stderr
    assert again.stdout == ""  # nothing processed twice
    assert "created group" not in again.stderr
    assert summary(again.stderr)["processed"] == 0
    after = group_info(r)
    assert after["last-delivered-id"] == before["last-delivered-id"] == ids[-1].encode()
    assert after["entries-read"] == before["entries-read"] == 5

    new = add(r, 1)
    third = run("consumer.py", GROUP, "c2", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)
    assert processed(third.stdout) == new  # another consumer, same group: only what is new


def test_start_from_an_explicit_id(r, server):
    ids = add(r, 5)

    got = run("consumer.py", GROUP, "c1", "--start-from", ids[1], "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert got.returncode == 0, got.stderr
    assert processed(got.stdout) == ids[2:]  # strictly after the given ID
    assert f"created group {GROUP} on {STREAM}, starting at {ids[1]}" in got.stderr.splitlines()
    assert group_info(r)["last-delivered-id"].decode() == ids[-1]
    assert pending_ids(r) == []


def test_restarted_consumer_processes_what_it_read_but_never_acknowledged(r, server):
    ids = add(r, 5)
    r.xgroup_create(STREAM, GROUP, id="0")
    # c1 read three entries and crashed before XACK: they are pending, delivered to c1.
    r.xreadgroup(GROUP, "c1", {STREAM: ">"}, count=3)
    assert pending_ids(r, "c1") == ids[:3]

    other = run("consumer.py", GROUP, "c2", "--burst", url=server.url, timeout=BURST_TIMEOUT)
    assert processed(other.stdout) == ids[3:]  # c2 gets only what was never delivered
    assert pending_ids(r, "c1") == ids[:3]  # c1's entries wait for c1 (until --claim-idle)

    restarted = run("consumer.py", GROUP, "c1", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert restarted.returncode == 0, restarted.stderr
    assert processed(restarted.stdout) == ids[:3]
    assert summary(restarted.stderr)["processed"] == 3
    assert pending_ids(r) == []
    assert group_info(r)["last-delivered-id"].decode() == ids[-1]


def test_two_consumers_share_1000_entries_each_exactly_once(r, server, tmp_path):
    outs = {name: open(tmp_path / f"{name}.out", "w+") for name in ("c1", "c2")}
    consumers = {
        name: spawn("consumer.py", GROUP, name, "--block", 200, "--count", 20, url=server.url, stdout=outs[name])
        for name in ("c1", "c2")
    }
    try:
        wait_blocked(r, readers=2)
        sent = run("producer.py", "sensor1", "--count", 1000, "-q", url=server.url)
        assert sent.returncode == 0, sent.stderr
        ids = [entry_id.decode() for entry_id, _ in r.xrange(STREAM)]
        assert len(ids) == 1000

        wait_for(
            lambda: group_info(r)["last-delivered-id"].decode() == ids[-1] and group_info(r)["pending"] == 0,
            what="all 1000 delivered and acknowledged",
        )
        errs = {name: stop(process)[1] for name, process in consumers.items()}
    finally:
        for process in consumers.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    for name, process in consumers.items():
        assert process.returncode == 0, errs[name]
    got = {}
    for name, out in outs.items():
        out.seek(0)
        got[name] = processed(out.read())
    assert len(got["c1"]) > 0 and len(got["c2"]) > 0, {name: len(v) for name, v in got.items()}
    assert not set(got["c1"]) & set(got["c2"])  # no entry went to both
    assert sorted(got["c1"] + got["c2"]) == sorted(ids)  # none missed, none twice within one
    assert summary(errs["c1"], "c1")["processed"] == len(got["c1"])
    assert summary(errs["c2"], "c2")["processed"] == len(got["c2"])
    assert pending_ids(r) == []
    assert {c["name"]: c["pending"] for c in r.xinfo_consumers(STREAM, GROUP)} == {b"c1": 0, b"c2": 0}


def test_invalid_readings_are_dead_lettered_not_processed(r, server):
    good = add(r, 1)
    bad = {
        r.xadd(
            STREAM, {"sensor_id": "sensor1", "temp": "hot", "humidity": "0.5"}
        ).decode(): "invalid reading: temp is not a number: 'hot'",
        r.xadd(
            STREAM, {"sensor_id": "sensor1", "temp": "0.5", "humidity": "nan"}
        ).decode(): "invalid reading: humidity is not a finite number: nan",
        r.xadd(STREAM, {"temp": "0.5", "humidity": "0.5"}).decode(): "invalid reading: missing field(s): sensor_id",
        r.xadd(
            STREAM, {"sensor_id": "  ", "temp": "0.5", "humidity": "0.5"}
        ).decode(): "invalid reading: sensor_id is empty",
        r.xadd(
            STREAM, {"sensor_id": b"\xff\xfe", "temp": "0.5", "humidity": "0.5"}
        ).decode(): "cannot be decoded: sensor_id is not valid UTF-8",
    }
    good += add(r, 1, sensor="sensor2")
    originals = dict(r.xrange(STREAM))

    got = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", url=server.url, timeout=BURST_TIMEOUT)

    assert got.returncode == 0, got.stderr
    assert processed(got.stdout) == good  # only the good ones are processed
    counts = summary(got.stderr)
    assert (counts["processed"], counts["dead-lettered"], counts["failed"]) == (2, 5, 0)
    for entry_id, error in bad.items():
        assert f"c1: dead-lettered {entry_id} to {DLQ}: {error}" in got.stderr.splitlines()

    letters = r.xrange(DLQ)
    assert [fields[b"dlq.id"].decode() for _, fields in letters] == list(bad)
    for _, fields in letters:
        entry_id = fields[b"dlq.id"].decode()
        original = {k: v for k, v in fields.items() if not k.startswith(b"dlq.")}
        assert original == originals[entry_id.encode()]  # the reading, unchanged
        assert fields[b"dlq.error"].decode() == bad[entry_id]
        assert fields[b"dlq.stream"] == STREAM.encode()
        assert fields[b"dlq.group"] == GROUP.encode()
        assert fields[b"dlq.consumer"] == b"c1"
        assert fields[b"dlq.deliveries"] == b"1"
    assert pending_ids(r) == []  # dead-lettered entries are acknowledged
    assert r.xlen(STREAM) == 7  # and left in the stream


def test_failed_processing_leaves_entries_pending_and_logs_their_ids(r, server):
    ids = add(r, 3)
    consumer = spawn("consumer.py", GROUP, "c1", "--start-from", "0", "--fail-rate", 1, "--block", 100, url=server.url)
    wait_for(
        lambda: r.exists(STREAM) and r.xinfo_groups(STREAM) and group_info(r)["pending"] == 3, what="3 entries pending"
    )
    time.sleep(0.3)  # a few more reads: failures are not retried at once, nor dropped
    out, err = stop(consumer)

    assert consumer.returncode == 0, err
    assert out == ""
    for entry_id in ids:
        assert (
            f"c1: failed {entry_id} (delivery 1): simulated failure (--fail-rate); left pending for retry"
            in err.splitlines()
        )
    counts = summary(err)
    assert (counts["processed"], counts["failed"], counts["dead-lettered"]) == (0, 3, 0)
    rows = r.xpending_range(STREAM, GROUP, "-", "+", 10, consumername="c1")
    assert [row["message_id"].decode() for row in rows] == ids
    assert [row["times_delivered"] for row in rows] == [1, 1, 1]
    assert not r.exists(DLQ)


def test_burst_retries_failures_until_dead_lettered_then_exits(r, server):
    """--burst exits once its own pending list is empty: failures are retried after --claim-idle
    and dead-lettered after --max-deliveries, not left behind."""
    ids = add(r, 3)
    started = time.monotonic()
    got = run(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--fail-rate",
        1,
        "--burst",
        "--claim-idle",
        200,
        "--max-deliveries",
        2,
        url=server.url,
        timeout=BURST_TIMEOUT,
    )

    assert got.returncode == 0, got.stderr
    assert got.stdout == ""
    assert time.monotonic() - started < 5  # two retry rounds of 200 ms, not minutes
    for delivery in (1, 2):
        assert all(f"failed {i} (delivery {delivery})" in got.stderr for i in ids)
    letters = r.xrange(DLQ)
    assert [f[b"dlq.id"].decode() for _, f in letters] == ids
    assert all(
        f[b"dlq.deliveries"] == b"3"
        and f[b"dlq.error"] == b"delivered 3 times; last error: simulated failure (--fail-rate)"
        for _, f in letters
    )
    assert pending_ids(r, "c1") == []


def test_burst_exits_0_at_once_when_nothing_is_new(r, server):
    add(r, 3)
    started = time.monotonic()
    got = run("consumer.py", GROUP, "c1", "--burst", "--block", 10_000, url=server.url, timeout=BURST_TIMEOUT)

    assert time.monotonic() - started < 3  # not waiting out BLOCK
    assert got.returncode == 0, got.stderr
    assert got.stdout == ""
    assert summary(got.stderr) == {
        "processed": 0,
        "failed": 0,
        "claimed": 0,
        "dead-lettered": 0,
        "trimmed-pending": 0,
        "trimmed-unread": 0,
    }


def test_quiet_prints_no_line_per_reading(r, server):
    add(r, 4)
    got = run("consumer.py", GROUP, "c1", "--start-from", "0", "--burst", "-q", url=server.url, timeout=BURST_TIMEOUT)

    assert got.returncode == 0, got.stderr
    assert got.stdout == ""
    assert summary(got.stderr)["processed"] == 4
    assert group_info(r)["entries-read"] == 4 and pending_ids(r) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_blocked_exits_0_within_block_plus_1s_with_one_summary(r, server, sig):
    consumer = spawn("consumer.py", GROUP, "c1", "--block", 2000, url=server.url)
    wait_blocked(r)

    signalled = time.monotonic()
    out, err = stop(consumer, sig)
    took = time.monotonic() - signalled

    assert consumer.returncode == 0, err
    assert took <= 3.0, f"took {took:.2f}s after the signal"
    assert out == ""
    assert summary(err)["processed"] == 0
    assert "Traceback" not in err
    assert group_info(r)["pending"] == 0


def test_signal_finishes_the_batch_in_hand(r, server, tmp_path):
    out = open(tmp_path / "out", "w+")
    consumer = spawn("consumer.py", GROUP, "c1", "--block", 200, "--count", 1, url=server.url, stdout=out)
    wait_blocked(r)
    ids = add(r, 3000)
    wait_for(lambda: (group_info(r)["entries-read"] or 0) >= 10, what="some entries read")
    _, err = stop(consumer, signal.SIGINT)

    assert consumer.returncode == 0, err
    out.seek(0)
    done = processed(out.read())
    assert 0 < len(done) < len(ids)  # it stopped early ...
    assert done == ids[: len(done)]
    assert summary(err)["processed"] == len(done)
    assert pending_ids(r) == []  # ... with everything it read processed and acknowledged
    assert group_info(r)["last-delivered-id"].decode() == done[-1]


def test_second_ctrl_c_quits_at_once(r, server):
    consumer = spawn("consumer.py", GROUP, "c1", "--block", 5000, url=server.url)
    wait_blocked(r)

    consumer.send_signal(signal.SIGINT)
    said = ""
    while "stopping after the batch in hand" not in said:  # the first Ctrl-C is taken
        line = consumer.stderr.readline()
        assert line, said
        said += line
    signalled = time.monotonic()
    out, err = stop(consumer, signal.SIGINT)
    err = said + err

    assert time.monotonic() - signalled < 1.5  # not waiting out BLOCK 5000
    assert consumer.returncode == 130, err
    assert "c1: quit at once; unacknowledged entries stay pending" in err
    assert "Traceback" not in err
