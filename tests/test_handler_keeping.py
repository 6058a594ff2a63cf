"""Slow work is not stolen: while a handler works on its batch longer than --claim-idle, the
consumer keeps its entries fresh (their idle time low), so that no other consumer claims them;
a consumer frozen (SIGSTOP) keeps nothing fresh, and its entries are claimed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
from conftest import GROUP, STREAM, add, group_info, handlers, journal, pending, spawn, stop, summary, wait_for

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
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_slow_handler_keeps_its_entries_and_nobody_claims_them(r, server, tmp_path, concurrency):
    """1.5 s per entry, --claim-idle 1000: without the keeper each entry would be claimed in hand (with
    --concurrency 4, several in the handler at once, no order: every one of them in hand)."""
    env = {**handlers(tmp_path, slow=SLOW), "SLOW": "1.5"}
    ids = add(r, 8)
    r.xgroup_create(STREAM, GROUP, id="0")
    args = ("--handler", "slow:process", "--claim-idle", 1000, "--count", 2, "--block", 200, "--stats-interval", 0)
    args += ("--concurrency", concurrency, "--order-by", "")

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
    print(
        f"{len(ids)} entries, processed {dict(Counter(who for kind, _, who in calls if kind == 'done'))}; "
        f"longest idle seen {worst} ms"
    )
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

    a = spawn(
        "consumer.py",
        GROUP,
        "A",
        "--handler",
        "slow:process",
        "--claim-idle",
        1000,
        "--count",
        2,
        "--block",
        200,
        "--stats-interval",
        0,
        url=server.url,
        env=env,
    )
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
