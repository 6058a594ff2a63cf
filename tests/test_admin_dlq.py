"""`admin.py dlq list | show | replay | purge`: the dead-letter stream, read and emptied, and a replay
that is all or nothing for each dead letter.
"""

from __future__ import annotations

import re

from conftest import admin, admin_json, reading, readme_state

from stream_pubsub.dead_letters import dead_letter

S, DLQ = "app:event", "app:event:dlq"


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
