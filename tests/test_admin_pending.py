"""`admin.py pending` and `admin.py cleanup`: a group's pending entries, listed oldest first, and
consumers that are gone removed without orphaning what they hold.
"""

from __future__ import annotations

import re
import time

from conftest import ANY, admin, admin_json, reading, timeless

S = "app:event"


# -- pending -------------------------------------------------------------------------------------
def test_pending_lists_oldest_first_with_filters(r, server):
    ids = [r.xadd(S, reading(i)).decode() for i in range(6)]
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=2)
    time.sleep(0.3)
    r.xreadgroup("g", "c2", {S: ">"}, count=3)
    r.xreadgroup("g", "c1", {S: "0"})  # c1 reads its own pending again: delivered twice
    r.xack(S, "g", ids[3])

    got = admin("pending", "g", url=server.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "group g on app:event: 4 pending entries (c1 2, c2 2)"
    assert re.fullmatch(r"  ID +CONSUMER +IDLE +DELIVERIES", lines[1])
    assert [line.split()[0:2] + line.split()[3:] for line in lines[2:]] == [
        [ids[0], "c1", "2"],
        [ids[1], "c1", "2"],
        [ids[2], "c2", "1"],
        [ids[4], "c2", "1"],
    ]

    doc = timeless(admin_json("pending", "g", "--consumer", "c2", url=server.url))
    assert doc == {
        "stream": S,
        "group": "g",
        "pending": 4,
        "consumers": {"c1": 2, "c2": 2},
        "filters": {"consumer": "c2", "min_idle_ms": 0},
        "entries": [
            {"id": ids[2], "consumer": "c2", "idle_ms": ANY, "deliveries": 1, "in_stream": True},
            {"id": ids[4], "consumer": "c2", "idle_ms": ANY, "deliveries": 1, "in_stream": True},
        ],
        "more": False,
    }

    # --min-idle: every entry was delivered at least 0.25 s ago, none a minute ago
    time.sleep(0.25)
    assert len(admin_json("pending", "g", "--min-idle", "200", url=server.url)["entries"]) == 4
    assert admin_json("pending", "g", "--min-idle", "60000", url=server.url)["entries"] == []

    got = admin("pending", "g", "--count", "3", url=server.url)
    assert got.stdout.splitlines()[-1] == "  ... more not shown (raise --count above 3)"
    assert admin_json("pending", "g", "--count", "3", url=server.url)["more"] is True


def test_pending_names_what_does_not_exist(r, server):
    got = admin("pending", "g", url=server.url)
    assert (got.returncode, got.stderr) == (
        1,
        f"Error: no stream 'app:event' at 127.0.0.1:{server.port} (nothing was added to it; is --stream right?)\n",
    )
    r.xadd(S, reading(0))
    r.xgroup_create(S, "g", id="0")
    r.xgroup_createconsumer(S, "g", "c1")
    got = admin("pending", "nope", url=server.url)
    assert (got.returncode, got.stderr) == (1, "Error: no group 'nope' on stream 'app:event' (its groups: g)\n")
    got = admin("pending", "g", "--consumer", "c9", url=server.url)
    assert (got.returncode, got.stderr) == (1, "Error: no consumer 'c9' in group 'g' (its consumers: c1)\n")
    assert admin("pending", " ", url=server.url).returncode == 2


# -- cleanup -------------------------------------------------------------------------------------
def test_cleanup_removes_idle_consumers_and_never_orphans_pending_entries(r, server):
    ids = [r.xadd(S, reading(i)) for i in range(5)]
    r.xgroup_create(S, "g", id="0")
    r.xgroup_createconsumer(S, "g", "gone-empty")
    r.xreadgroup("g", "gone-holding", {S: ">"}, count=2)
    r.xreadgroup("g", "gone-holding", {S: "0"})  # delivered twice
    time.sleep(2.0)
    r.xgroup_createconsumer(S, "g", "live")
    # --idle leaves 1.5 s for admin.py to start: a fresh consumer must not pass for idle on a busy machine.
    got = admin("cleanup", "g", "--idle", "1500", url=server.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert re.fullmatch(r"removed gone-empty \(idle \S+, nothing pending\)", lines[0])
    assert re.fullmatch(
        r"kept gone-holding \(idle \S+\): it holds 2 pending entries; --claim-to <a running "
        r"consumer> hands them over first",
        lines[1],
    )
    assert lines[2] == "group g: removed 1 consumer, kept 1; 1 active left alone"
    assert {c["name"] for c in r.xinfo_consumers(S, "g")} == {b"gone-holding", b"live"}

    got = admin("cleanup", "g", "--idle", "1500", "--claim-to", "gone-holding", url=server.url)
    assert got.returncode == 1 and "--claim-to gone-holding: it has been idle for" in got.stderr
    got = admin("cleanup", "g", "--idle", "1500", "--claim-to", "nobody", url=server.url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: --claim-to nobody: no such consumer in group g (its consumers: gone-holding, live)\n",
    )

    r.xgroup_createconsumer(S, "g", "live2")  # fresh, so surely not idle yet; "live" may be by now
    got = admin("cleanup", "g", "--idle", "1500", "--claim-to", "live2", url=server.url)
    assert got.returncode == 0, got.stderr
    assert re.search(
        r"^removed gone-holding \(idle \S+, its 2 pending entries handed to live2 first\)$", got.stdout, re.M
    )
    pending = r.xpending_range(S, "g", "-", "+", 10)
    assert [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending] == [
        (ids[0], b"live2", 2),
        (ids[1], b"live2", 2),
    ]  # nothing orphaned, delivery counts kept
    assert b"gone-holding" not in {c["name"] for c in r.xinfo_consumers(S, "g")}
