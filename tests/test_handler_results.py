"""Your own processing: `consumer.py GROUP CONSUMER --handler module:function`, and what becomes of
an entry by what the handler does with it: returns (acknowledged), raises (left pending, delivered
again, dead-lettered after --max-deliveries), raises Unprocessable (dead-lettered at once); and an
entry it never sees because it cannot be decoded.

Each test writes its handler module into tmp_path and runs the scripts as a user does, with
PYTHONPATH pointing there. Every handler call is written to a journal file (one line per call,
O_APPEND, so several processes can share it): that is how a test knows what the handler saw.
"""

from __future__ import annotations

import json
from collections import Counter

from conftest import (
    DLQ,
    GROUP,
    STREAM,
    add,
    consume,
    dead_letters,
    group_info,
    handlers,
    journal,
    pending,
    spawn,
    stop,
    summary,
    wait_for,
)

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
    assert summary(err) == {
        "processed": 5,
        "failed": 0,
        "claimed": 0,
        "dead-lettered": 0,
        "trimmed-pending": 0,
        "trimmed-unread": 0,
    }
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
    assert summary(err) == {
        "processed": 3,
        "failed": 3,
        "claimed": 3,
        "dead-lettered": 0,
        "trimmed-pending": 0,
        "trimmed-unread": 0,
    }
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
    consumer = spawn(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--handler",
        "once:process",
        url=server.url,
        env={**env, "FAIL": "1"},
    )
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
    assert summary(err) == {
        "processed": 2,
        "failed": 3,
        "claimed": 3,
        "dead-lettered": 1,
        "trimmed-pending": 0,
        "trimmed-unread": 0,
    }
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
    assert summary(err) == {
        "processed": 1,
        "failed": 0,
        "claimed": 0,
        "dead-lettered": 2,
        "trimmed-pending": 0,
        "trimmed-unread": 0,
    }
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
