"""admin.py: every command against a real server in a state each test builds, as a user runs it."""

from __future__ import annotations

import json
import re
import shlex
import signal
import time

import click
import pytest
import redis
from conftest import ROOT, admin, admin_json, read_lines, spawn, stop, wait_for

from stream_pubsub.dead_letters import dead_letter
from stream_pubsub.local_server import free_port

S, DLQ = "app:event", "app:event:dlq"
ANY = object()  # stands for a number that depends on timing (idle times)


def reading(i: int, temp="0.5") -> dict:
    return {"sensor_id": f"sensor{i % 3 + 1}", "temp": temp, "humidity": f"0.{i}"}


def readme_state(r) -> list[str]:
    """The README's example (and the one each info test starts from):

    ten readings; group1's consumer c1 read four and acknowledged two, c2 read two, processed one
    and dead-lettered the other (its temp is not a number); a group `audit` created at 0 never
    read anything; then the stream was trimmed to its newest 8 (MAXLEN 8).
    """
    ids = [r.xadd(S, reading(i, temp="abc" if i == 5 else "0.5")) for i in range(10)]
    r.xgroup_create(S, "audit", id="0")
    r.xgroup_create(S, "group1", id="0")
    r.xreadgroup("group1", "c1", {S: ">"}, count=4)
    r.xack(S, "group1", ids[0], ids[1])
    r.xreadgroup("group1", "c2", {S: ">"}, count=2)
    r.xack(S, "group1", ids[4])
    fields = r.xrange(S, ids[5], ids[5])[0][1]
    dead_letter(
        r,
        dlq=DLQ,
        stream=S,
        group="group1",
        consumer="c2",
        entry_id=ids[5],
        fields=fields,
        deliveries=1,
        error="invalid reading: temp is not a number: 'abc'",
    )
    r.xtrim(S, maxlen=8, approximate=False)
    return [i.decode() for i in ids]


def timeless(doc):
    """Replace the timing-dependent numbers of a JSON document by ANY (after checking their type)."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key in ("idle_ms", "inactive_ms"):  # inactive_ms: Valkey and Redis 7.2+ only
                assert isinstance(value, int) or (key == "inactive_ms" and value is None), (key, value)
                out[key] = ANY
            else:
                out[key] = timeless(value)
        return out
    if isinstance(doc, list):
        return [timeless(v) for v in doc]
    return doc


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


# -- dead letters --------------------------------------------------------------------------------
def test_dlq_list_and_show(r, server):
    ids = readme_state(r)
    dlq_id = r.xrange(DLQ)[0][0].decode()
    got = admin("dlq", "list", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[0] == "app:event:dlq: 1 dead letter"
    assert re.search(
        rf"\n  {dlq_id} +app:event {ids[5]} +group1/c2 +1 +invalid reading: temp is not a "
        r"number: 'abc'\n",
        got.stdout,
    )

    entry = admin_json("dlq", "show", dlq_id, url=server.url)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry.pop("time"))
    assert entry == {
        "id": dlq_id,
        "original_id": ids[5],
        "stream": S,
        "group": "group1",
        "consumer": "c2",
        "deliveries": 1,
        "error": "invalid reading: temp is not a number: 'abc'",
        "fields": {"sensor_id": "sensor3", "temp": "abc", "humidity": "0.5"},
    }
    listed = admin_json("dlq", "list", url=server.url)
    assert listed["key"] == DLQ and listed["length"] == 1 and listed["more"] is False
    assert [e["id"] for e in listed["entries"]] == [dlq_id]

    shown = admin("dlq", "show", dlq_id, url=server.url).stdout
    assert f"  from        app:event, entry {ids[5]}\n" in shown
    assert "original fields\n  sensor_id  sensor3\n  temp       abc\n  humidity   0.5\n" in shown

    got = admin("dlq", "show", "1-1", url=server.url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: no entry 1-1 in the dead-letter stream app:event:dlq (`admin.py dlq list` shows what is there)\n",
    )
    assert admin("dlq", "show", "nonsense", url=server.url).returncode == 2


def add_dead_letters(r, n: int) -> list[str]:
    """n poison readings, each delivered to g/c1 and dead-lettered (only a pending entry is)."""
    if not r.exists(S) or not any(g["name"] == b"g" for g in r.xinfo_groups(S)):
        r.xgroup_create(S, "g", id="$", mkstream=True)
    for i in range(n):
        source = r.xadd(S, reading(i, temp="bad"))
        r.xreadgroup("g", "c1", {S: ">"})
        dead_letter(
            r,
            dlq=DLQ,
            stream=S,
            group="g",
            consumer="c1",
            entry_id=source,
            fields=r.xrange(S, source, source)[0][1],
            deliveries=6,
            error="simulated",
        )
    return [i.decode() for i, _ in r.xrange(DLQ)]


def test_dlq_replay_puts_entries_back_with_their_original_fields(r, server):
    dead = add_dead_letters(r, 3)
    before = r.xlen(S)
    got = admin("dlq", "replay", dead[1], url=server.url)
    assert got.returncode == 0, got.stderr
    new_id = r.xrevrange(S, count=1)[0][0].decode()
    assert got.stdout == f"replayed {dead[1]} (was {r.xrange(S)[1][0].decode()}) to app:event as {new_id}\n"
    assert r.xrevrange(S, count=1)[0][1] == {b"sensor_id": b"sensor2", b"temp": b"bad", b"humidity": b"0.1"}
    assert [i.decode() for i, _ in r.xrange(DLQ)] == [dead[0], dead[2]]

    got = admin("dlq", "replay", "--all", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stderr == "replayed 2 dead letters from app:event:dlq\n"
    assert r.xlen(DLQ) == 0 and r.xlen(S) == before + 3
    assert not any(k.startswith(b"dlq.") for _, f in r.xrange(S) for k in f)

    got = admin("dlq", "replay", url=server.url)
    assert got.returncode == 2 and "name the dead letters to replay" in got.stderr
    got = admin("dlq", "replay", "1-1", url=server.url)
    assert got.returncode == 1 and "no entry 1-1 in the dead-letter stream" in got.stderr


def acl_user(r, name: str, *rules: str) -> None:
    r.execute_command(
        "ACL",
        "SETUSER",
        name,
        "reset",
        "on",
        ">pw-secret",
        "~app:*",
        "+ping",
        "+type",
        "+xrange",
        "+xrevrange",
        "+xlen",
        *rules,
    )


def test_dlq_replay_refused_half_way_changes_nothing(r, server):
    """The XADD back and the XDEL go in one MULTI/EXEC: a user who may do one but not the other, or
    may not run MULTI at all, gets one line, and each dead letter is still where it was (never in
    both places, never in neither)."""
    dead = add_dead_letters(r, 2)
    before = r.xrange(S)

    def refused(user: str, *rules: str, ids=("--all",)):
        acl_user(r, user, *rules)
        got = admin("dlq", "replay", *ids, url=f"redis://{user}:pw-secret@127.0.0.1:{server.port}/0")
        assert got.returncode == 1 and got.stdout == ""
        assert got.stderr.count("\n") == 1 and "pw-secret" not in got.stderr
        assert [i.decode() for i, _ in r.xrange(DLQ)] == dead and r.xrange(S) == before  # nothing changed
        return got.stderr

    err = refused("no-xdel", "+xadd", "+multi", "+exec")  # may add to the stream, not delete dead letters
    assert err.startswith(
        f"Error: could not replay 2 dead letters from app:event:dlq to app:event, from {dead[0]} on "
        "(the Redis user has no permission for this"
    )
    assert err.endswith("nothing of it changed: they are still there\n")
    err = refused("no-xadd", "+xdel", "+multi", "+exec", ids=[dead[1]])  # the XDEL alone would lose it
    assert err.startswith(f"Error: could not replay 1 dead letter from app:event:dlq to app:event, from {dead[1]} on")
    err = refused("no-multi", "+xadd", "+xdel")  # without MULTI, Redis would run the XADD and XDEL one by one
    assert err.startswith("Error: replay adds each dead letter back and removes it in one MULTI/EXEC, and the Redis ")
    assert err.endswith("; nothing was changed\n")

    got = admin("dlq", "replay", "--all", url=server.url)  # the default user may: all of them, once
    assert got.returncode == 0 and got.stderr == "replayed 2 dead letters from app:event:dlq\n"
    assert r.xlen(DLQ) == 0 and r.xlen(S) == len(before) + 2


def test_dlq_purge_asks_first(r, server):
    add_dead_letters(r, 3)
    got = admin("dlq", "purge", url=server.url, input="n\n")
    assert got.returncode == 1 and "delete all 3 dead letters in app:event:dlq for good?" in got.stdout
    assert r.xlen(DLQ) == 3
    got = admin("dlq", "purge", url=server.url, input="y\n")
    assert got.returncode == 0 and got.stdout.endswith("deleted 3 dead letters from app:event:dlq\n")
    assert r.xlen(DLQ) == 0
    assert admin("dlq", "purge", "--yes", url=server.url).stdout == "app:event:dlq is empty: nothing to purge\n"


# -- trim ----------------------------------------------------------------------------------------
def test_trim_safe_keeps_what_a_group_has_not_read_or_acknowledged(r, server):
    ids = [r.xadd(S, reading(i)).decode() for i in range(20)]
    r.xgroup_create(S, "fast", id="0")
    r.xreadgroup("fast", "f1", {S: ">"}, count=20)
    r.xack(S, "fast", *ids)
    r.xgroup_create(S, "slow", id="0")
    r.xreadgroup("slow", "s1", {S: ">"}, count=10)  # read 0..9; 10..19 not delivered yet
    r.xack(S, "slow", *[i for n, i in enumerate(ids[:10]) if n not in (2, 5, 8)])  # 2, 5, 8 pending

    got = admin("trim", "--maxlen", "5", "--safe", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stdout == (
        "removed 2 entries from app:event; 18 left\n"
        "kept 13 entries that --maxlen 5 would have removed, because group slow has not "
        "read 5 and not acknowledged 3\n"
    )
    assert [i.decode() for i, _ in r.xrange(S)] == ids[2:]  # every pending and unread entry is there

    got = admin("trim", "--minid", ids[12], "--safe", url=server.url)
    assert got.stdout == (
        "removed 0 entries from app:event; 18 left\n"
        "kept 10 entries that --minid " + ids[12] + " would have removed, because group slow "
        "has not read 2 and not acknowledged 3\n"
    )

    r.xack(S, "slow", ids[2], ids[5], ids[8])
    r.xreadgroup("slow", "s1", {S: ">"}, count=4)  # read 10..13; 12 and 13 stay pending
    r.xack(S, "slow", ids[10], ids[11])
    got = admin("trim", "--maxlen", "5", "--safe", url=server.url)
    assert got.stdout == (
        "removed 10 entries from app:event; 8 left\n"
        "kept 3 entries that --maxlen 5 would have removed, because group slow has not "
        "read 1 and not acknowledged 2\n"
    )
    assert [i.decode() for i, _ in r.xrange(S)] == ids[12:]
    assert {p["message_id"].decode() for p in r.xpending_range(S, "slow", "-", "+", 10)} == {ids[12], ids[13]}


def test_trim_without_safe_says_what_groups_lost(r, server):
    ids = [r.xadd(S, reading(i)).decode() for i in range(10)]
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=4)
    r.xack(S, "g", ids[0], ids[1])

    got = admin("trim", "--maxlen", "8", url=server.url)  # removes 0 and 1: both acknowledged
    assert (got.returncode, got.stdout, got.stderr) == (0, "removed 2 entries from app:event; 8 left\n", "")
    got = admin("trim", "--maxlen", "3", url=server.url)  # removes 2..6: 2, 3 pending, 4..6 unread
    assert got.stdout == "removed 5 entries from app:event; 3 left\n"
    assert got.stderr == (
        "warning: of the entries removed, group g had not read 3 and not acknowledged 2 (--safe keeps such entries)\n"
    )
    assert admin("trim", "--maxlen", "3", url=server.url).stdout == "removed 0 entries from app:event; 3 left\n"
    assert admin("trim", "--maxlen", "0", url=server.url).stdout == "removed 3 entries from app:event; 0 left\n"


def test_trim_usage_errors(r, server):
    for args in ([], ["--maxlen", "1", "--minid", "1-0"], ["--minid", "x"], ["--maxlen", "-1"]):
        got = admin("trim", *args, url=server.url)
        assert got.returncode == 2, args
    got = admin("trim", "--maxlen", "1", url=server.url)
    assert (got.returncode, got.stdout) == (0, f"no stream app:event at 127.0.0.1:{server.port}: nothing to trim\n")


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


# -- reading without a group ---------------------------------------------------------------------
def test_range_reads_history_in_both_directions(r, server):
    ids = [r.xadd(S, reading(i)).decode() for i in range(5)]
    odd = r.xadd(S, {"sensor_id": b"\xff", "temp": "1"}).decode()

    got = admin("range", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == [
        f"{i} sensor_id=sensor{n % 3 + 1} temp=0.5 humidity=0.{n}" for n, i in enumerate(ids)
    ] + [f"{odd} sensor_id=\\xff temp=1"]
    got = admin("range", ids[1], ids[3], url=server.url)
    assert [line.split()[0] for line in got.stdout.splitlines()] == ids[1:4]
    got = admin("range", f"({ids[1]}", "+", "--count", "2", url=server.url)
    assert [line.split()[0] for line in got.stdout.splitlines()] == ids[2:4]
    assert got.stderr == f"(more entries follow: raise --count, or go on with `admin.py range '({ids[3]}' +`)\n"

    doc = admin_json("range", "--reverse", "--count", "2", url=server.url)
    assert doc == {
        "stream": S,
        "more": True,
        "entries": [
            {"id": odd, "fields": {"sensor_id": "\\xff", "temp": "1"}},
            {"id": ids[4], "fields": {"sensor_id": "sensor2", "temp": "0.5", "humidity": "0.4"}},
        ],
    }
    assert admin_json("range", "--count", "0", url=server.url)["more"] is False

    got = admin("range", "yesterday", url=server.url)
    assert got.returncode == 2 and "'yesterday': use - (the oldest)" in got.stderr


def test_tail_shows_every_new_entry_to_every_reader_until_ctrl_c(r, server):
    old = r.xadd(S, reading(0)).decode()
    tails = [spawn("admin.py", "tail", "--block", "200", url=server.url) for _ in range(2)]
    for tail in tails:
        assert tail.stderr.readline() == f"tail app:event: entries after {old} (Ctrl-C to stop)\n"
    new = [r.xadd(S, reading(i)).decode() for i in range(1, 4)]
    for tail in tails:  # both see all three: XREAD has no group sharing the work
        assert [line.split()[0] for line in read_lines(tail.stdout, 3)] == new
        out, err = stop(tail, signal.SIGINT, timeout=5)
        assert tail.returncode == 0
        assert (out, err) == ("", "tail stopped after 3 entries\n")

    tail = spawn("admin.py", "tail", "--from", "0", "--json", url=server.url)
    assert [json.loads(line)["id"] for line in read_lines(tail.stdout, 4)] == [old, *new]
    stop(tail, signal.SIGINT, timeout=5)
    assert tail.returncode == 0
    assert admin("tail", "--from", "latest", url=server.url).returncode == 2


def test_watch_refreshes_with_rates_until_ctrl_c(r, server):
    r.xgroup_create(S, "g", id="0", mkstream=True)
    watch = spawn("admin.py", "watch", "--json", "--interval", "0.2", url=server.url)
    first = json.loads(watch.stdout.readline())
    assert first["rates"] == {"seconds": None, "added_per_s": None, "acknowledged_per_s": {}}
    assert set(first) == {"stream", "groups", "dead_letters", "warnings", "rates"}
    ids = [r.xadd(S, reading(i)) for i in range(20)]
    r.xreadgroup("g", "c1", {S: ">"}, count=20)
    r.xack(S, "g", *ids)

    seen = {"added": 0.0, "acknowledged": 0.0}

    def rates_seen():  # the adds and the acks may fall on either side of a refresh
        rates = json.loads(watch.stdout.readline())["rates"]
        seen["added"] += rates["added_per_s"] * rates["seconds"]
        seen["acknowledged"] += rates["acknowledged_per_s"]["g"] * rates["seconds"]
        return round(seen["added"]) == 20 and round(seen["acknowledged"]) == 20

    wait_for(rates_seen, timeout=5, what="rates adding up to 20 added and 20 acknowledged")
    stop(watch, signal.SIGINT, timeout=5)
    assert watch.returncode == 0

    watch = spawn("admin.py", "watch", "--interval", "0.2", url=server.url)
    wait_for(lambda: "ACKED/S" in watch.stdout.readline(), timeout=5, what="the groups table")
    out, err = stop(watch, signal.SIGINT, timeout=5)
    assert (watch.returncode, err) == (0, "")


def test_tail_and_watch_carry_on_when_redis_comes_back(own_server):
    server = own_server()
    client = redis.Redis.from_url(server.url)
    first = client.xadd(S, reading(0)).decode()
    tail = spawn("admin.py", "tail", "--block", "200", url=server.url)
    watch = spawn("admin.py", "watch", "--json", "--interval", "0.2", url=server.url)
    assert tail.stderr.readline() == f"tail app:event: entries after {first} (Ctrl-C to stop)\n"
    assert json.loads(watch.stdout.readline())["stream"]["length"] == 1

    server.kill()
    time.sleep(0.5)
    server.start()  # same port, empty (no persistence)
    later = client.xadd(S, reading(1)).decode()
    assert tail.stdout.readline().split()[0] == later  # nothing after the last one shown is missed
    wait_for(
        lambda: json.loads(watch.stdout.readline())["stream"]["first_id"] == later,
        timeout=5,
        what="watch to show the new stream",
    )
    for process in (tail, watch):
        out, err = stop(process, signal.SIGINT, timeout=5)
        assert process.returncode == 0
        assert "lost Redis at 127.0.0.1" in err and "reconnected to 127.0.0.1" in err


# -- help ----------------------------------------------------------------------------------------
def test_every_command_has_an_example_and_every_option_help():
    import admin

    def commands(group, path):
        for name, command in group.commands.items():
            yield f"{path} {name}", command
            if isinstance(command, click.Group):
                yield from commands(command, f"{path} {name}")

    for path, command in commands(admin.main, "python admin.py"):
        if not isinstance(command, click.Group):
            assert path in command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.name}"


# -- the README shows real output ----------------------------------------------------------------
def mask(text: str) -> str:
    """Output with what changes from run to run (IDs, times, column widths) made uniform."""
    text = re.sub(r"\b\d{10,}-\d+\b", "<id>", text)
    text = re.sub(r"\b(\d+ms|\d+\.\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh|n/a)(?=\s|$)", "<age>", text)
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def readme_examples() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## See what is going on\n")[1].split("\n## ")[0]
    blocks = re.findall(r"```\n(\$ python admin\.py [^\n]*)\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the README's admin.py examples went missing"
    return blocks


def test_readme_shows_what_admin_prints(r, server):
    readme_state(r)
    for command, shown in readme_examples():
        got = admin(*shlex.split(command)[3:], url=server.url)
        assert got.returncode == 0, got.stderr
        assert mask(got.stdout) == mask(shown), command


def test_a_consumer_that_never_got_an_entry_is_never_inactive(r, server):
    """Valkey and Redis 7.2+ report `inactive` -1 for a consumer nothing was delivered to: "never",
    not "-1ms"; Redis 7.0 reports no `inactive` at all: "n/a"."""
    r.xgroup_create(S, "group1", "$", mkstream=True)
    r.xgroup_createconsumer(S, "group1", "c-never")  # in the group, never given an entry
    got = admin("info", url=server.url)
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    reported = r.xinfo_consumers(S, "group1")[0].get("inactive")
    row = next(line for line in got.stdout.splitlines() if "c-never" in line)
    member = doc["groups"][0]["consumers"][0]
    if reported is None:
        assert member["inactive_ms"] is None and row.rstrip().endswith("n/a")
    else:
        assert reported == -1 and member["inactive_ms"] == -1 and row.rstrip().endswith("never"), row
