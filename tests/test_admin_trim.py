"""`admin.py trim`: MAXLEN or MINID, with --safe keeping what a group has not read or acknowledged,
and without it saying what the groups lost.
"""

from __future__ import annotations

from conftest import admin, reading

S = "app:event"


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
