"""`admin.py info`: the stream, its groups and consumers, and the warnings, against a real server in
a state each test builds (the README's example, mostly: see readme_state); and every command's one
line when the server cannot be reached.
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import ANY, admin, admin_json, reading, readme_state, timeless

from stream_pubsub.local_server import free_port

S, DLQ = "app:event", "app:event:dlq"


# -- info ----------------------------------------------------------------------------------------
def test_info_shows_stream_groups_consumers_and_warns(r, server):
    ids = readme_state(r)
    got = admin("info", url=server.url)
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert f"  length        8 entries (first {ids[2]}, last {ids[9]})" in out
    assert "  added         10 in all, 2 since trimmed or deleted" in out
    assert "  dead letters  1 entry in app:event:dlq" in out
    assert re.search(r"\n  audit +0 +0 +0-0 +8\n", out)
    assert re.search(rf"\n  group1 +2 +2 +{ids[5]} +4\n", out)
    assert re.search(r"\n  group1 +c1 +2 +\S+ +\S+\n  group1 +c2 +0 ", out)
    warnings = out.split("Warnings\n")[1].splitlines()
    assert warnings == [
        "  ! group audit: 2 entries were trimmed or deleted before it read them",
        "  ! group audit has no consumers and 8 unread entries: it holds back `trim"
        " --safe`; delete it with `admin.py group delete audit` if it is a typo",
        "  ! 1 entry in the dead-letter stream app:event:dlq: see `admin.py dlq list`",
    ]

    doc = timeless(admin_json("info", url=server.url))
    assert doc == {
        "stream": {
            "key": S,
            "exists": True,
            "length": 8,
            "first_id": ids[2],
            "last_id": ids[9],
            "last_generated_id": ids[9],
            "entries_added": 10,
            "removed": 2,
            "max_deleted_id": "0-0",
            "cap": None,
        },
        "groups": [
            {
                "name": "audit",
                "consumers": [],
                "pending": 0,
                "last_delivered_id": "0-0",
                "entries_read": None,
                "lag": 8,
                "lag_source": "server",
                "lag_at_least": False,
                "trimmed_unread": 2,
                "pending_trimmed": 0,
                "pending_trimmed_at_least": False,
            },
            {
                "name": "group1",
                "consumers": [
                    {"name": "c1", "pending": 2, "idle_ms": ANY, "inactive_ms": ANY},
                    {"name": "c2", "pending": 0, "idle_ms": ANY, "inactive_ms": ANY},
                ],
                "pending": 2,
                "last_delivered_id": ids[5],
                "entries_read": 6,
                "lag": 4,
                "lag_source": "server",
                "lag_at_least": False,
                "trimmed_unread": 0,
                "pending_trimmed": 0,
                "pending_trimmed_at_least": False,
            },
        ],
        "dead_letters": {"key": DLQ, "length": 1},
        "warnings": [
            {
                "kind": "trimmed_unread",
                "group": "audit",
                "consumer": None,
                "count": 2,
                "message": "group audit: 2 entries were trimmed or deleted before it read them",
            },
            {
                "kind": "no_consumers",
                "group": "audit",
                "consumer": None,
                "count": 8,
                "message": "group audit has no consumers and 8 unread entries: it holds back `trim --safe`; "
                "delete it with `admin.py group delete audit` if it is a typo",
            },
            {
                "kind": "dead_letters",
                "group": None,
                "consumer": None,
                "count": 1,
                "message": "1 entry in the dead-letter stream app:event:dlq: see `admin.py dlq list`",
            },
        ],
    }


def test_info_warns_about_idle_consumers_trimmed_pending_and_lag_beyond_length(r, server):
    ids = readme_state(r)
    r.delete(DLQ)
    time.sleep(0.3)
    r.xgroup_createconsumer(S, "group1", "c3")  # just arrived: not idle, holds nothing
    doc = admin_json("info", "--warn-idle", "200", url=server.url)  # c1: 300 ms idle, or 1.2s on a busy machine
    assert [(w["kind"], w["group"], w["consumer"], w["count"]) for w in doc["warnings"]] == [
        ("trimmed_unread", "audit", None, 2),
        ("no_consumers", "audit", None, 8),
        ("idle_with_pending", "group1", "c1", 2),  # c2 is as idle but holds nothing; c3 is not idle
    ]
    assert doc["dead_letters"] == {"key": DLQ, "length": 0}
    assert re.fullmatch(
        r"consumer c1 of group group1 has been idle for (\d{3}ms|\d+\.\ds) holding 2 pending entries "
        r"\(gone\? see `admin\.py cleanup --help`\)",
        doc["warnings"][2]["message"],
    )

    # Trim past c1's pending entries and past what group1 has read.
    r.xtrim(S, maxlen=2, approximate=False)
    doc = admin_json("info", url=server.url)
    group1 = doc["groups"][1]
    assert (group1["lag"], group1["trimmed_unread"], group1["pending_trimmed"]) == (4, 2, 2)
    assert [w["message"] for w in doc["warnings"]] == [
        "group audit: 8 entries were trimmed or deleted before it read them",
        "group audit has no consumers and 2 unread entries: it holds back `trim --safe`; "
        "delete it with `admin.py group delete audit` if it is a typo",
        "group group1: 2 entries were trimmed or deleted before it read them "
        "(its lag, 4, exceeds the stream's length, 2)",
        "group group1: 2 pending entries were trimmed from the stream before being acknowledged; their data is gone",
    ]
    got = admin("pending", "group1", url=server.url)
    assert got.returncode == 0, got.stderr
    assert re.search(rf"\n  {ids[2]} +c1 +\S+ +1 +trimmed away\n", got.stdout)


def test_info_healthy_stream_has_no_warnings_and_counts_lag_the_server_cannot(r, server):
    ids = [r.xadd(S, reading(i)) for i in range(6)]
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=6)
    r.xack(S, "g", *ids)
    r.xgroup_create(S, "later", id="$")
    r.xgroup_createconsumer(S, "later", "c1")  # (a group without consumers and unread entries is warned about)
    for i in range(3):
        r.xadd(S, reading(i))
    r.xdel(S, ids[3])  # a hole: the server can no longer work out "later"'s lag
    doc = admin_json("info", "--maxlen", "10", url=server.url)
    assert doc["warnings"] == []
    assert doc["stream"]["cap"] == 10 and doc["stream"]["max_deleted_id"] == ids[3].decode()
    later = doc["groups"][1]
    assert (later["name"], later["lag"], later["lag_source"], later["trimmed_unread"]) == ("later", 3, "counted", 0)
    got = admin("info", "--maxlen", "10", url=server.url)
    assert "  cap           MAXLEN 10, 80% full" in got.stdout
    assert re.search(r"\n  later +1 +0 +\S+ +3 \(counted\)\n", got.stdout)
    assert got.stdout.endswith("Warnings\n  none\n")


def test_info_on_a_missing_stream_and_on_a_key_of_another_type(r, server):
    doc = admin_json("info", url=server.url)
    assert doc["stream"]["exists"] is False and doc["groups"] == [] and doc["warnings"] == []
    assert "does not exist yet" in admin("info", url=server.url).stdout

    r.set(S, "not a stream")
    got = admin("info", url=server.url)
    assert got.returncode == 1
    assert (
        got.stderr == f"Error: the key 'app:event' at 127.0.0.1:{server.port} holds a string, not a stream; "
        "left untouched\n"
    )
    assert r.get(S) == b"not a stream"


@pytest.mark.parametrize(
    "command",
    [
        "info",
        "watch",
        "pending g",
        "range",
        "tail",
        "dlq list",
        "dlq show 1-0",
        "dlq replay --all",
        "dlq purge --yes",
        "trim --maxlen 1",
        "cleanup g --idle 1",
        "group list",
        "group create g",
        "group rewind g 0",
        "group delete g --yes",
    ],
)
def test_unreachable_server_is_one_line(command):
    port = free_port()
    got = admin(*command.split(), url=f"redis://:secret@127.0.0.1:{port}/0", timeout=10)
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr.startswith(f"Error: cannot reach Redis at 127.0.0.1:{port} (")
    assert got.stderr.count("\n") == 1 and "secret" not in got.stderr
