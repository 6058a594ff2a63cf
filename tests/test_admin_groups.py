"""`admin.py group`: create, rewind, delete and list consumer groups, on one stream key and on a
sharded stream (one node and a cluster); and `info`'s warning about a group nobody consumes,
which holds back `trim --safe` (a typo's group)."""

from __future__ import annotations

import json
import re

from conftest import admin, run

from stream_pubsub import shards

S = "app:event"
NO_CONSUMERS = (
    "group {g} has no consumers and {n} unread entries: it holds back `trim --safe`; "
    "delete it with `admin.py group delete {g}` if it is a typo"
)


def positions(db, key: str = S) -> dict[str, str]:
    return {g["name"].decode(): g["last-delivered-id"].decode() for g in db.xinfo_groups(key)}


# -- one stream key ------------------------------------------------------------------------------
def test_create_says_what_the_group_skips_and_refuses_mistakes(r, server):
    got = admin("group", "create", "g1", url=server.url)  # no stream yet: MKSTREAM creates it
    assert (got.returncode, got.stdout, got.stderr) == (
        0,
        "created group g1 on app:event at $: it skips the 0 entries there now and reads what is added from now on\n",
        "",
    )
    assert r.type(S) == b"stream" and positions(r) == {"g1": "0-0"}
    ids = [r.xadd(S, {"sensor_id": "sensor1", "n": i}).decode() for i in range(30)]

    got = admin("group", "create", "g2", "--start-from", "0", url=server.url)
    assert got.stdout == "created group g2 on app:event at 0: it reads the 30 entries there now, then what is added\n"
    got = admin("group", "create", "g3", url=server.url)
    assert got.stdout == (
        "created group g3 on app:event at $: it skips the 30 entries there now and reads what is added from now on\n"
    )
    got = admin("group", "create", "g4", "--start-from", ids[9], url=server.url)
    assert got.stdout == (
        f"created group g4 on app:event after {ids[9]}: it skips 10 entries (up to that ID) and reads 20 entries "
        "after it, then what is added\n"
    )
    assert positions(r) == {"g1": "0-0", "g2": "0-0", "g3": ids[29], "g4": ids[9]}

    got = admin("group", "create", "g4", "--start-from", "0", url=server.url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: group g4 exists already on app:event: `admin.py group rewind g4 TO` moves it, "
        "`admin.py group delete g4` deletes it\n",
    )
    got = admin("group", "create", "g5", "--start-from", "latest", url=server.url)
    assert got.returncode == 2 and got.stderr.endswith(
        "Error: Invalid value for '--start-from': 'latest': use $ (the end), 0 (the start) or an ID like "
        "1700000000000-0\n"
    )
    got = admin("group", "create", "g5", "--start-from", "99999999999999999999", url=server.url)
    assert (got.returncode, got.stderr) == (
        2,
        "Error: 99999999999999999999: Redis refuses it as a stream ID (use $, 0 or an ID like 1700000000000-0)\n",
    )
    assert admin("group", "create", " ", url=server.url).returncode == 2
    assert set(positions(r)) == {"g1", "g2", "g3", "g4"}  # the mistakes created nothing


def test_rewind_says_what_is_unread_again_or_skipped_and_keeps_pending_entries(r, server):
    ids = [r.xadd(S, {"sensor_id": "sensor1", "n": i}).decode() for i in range(30)]
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=20)  # 20 delivered, 20 pending
    r.xack(S, "g", *ids[:15])  # 5 of them still pending

    got = admin("group", "rewind", "g", "0", url=server.url)
    assert (got.returncode, got.stdout) == (
        0,
        "rewound group g on app:event to 0: 20 entries unread again (its pending entries stay pending)\n",
    )
    assert positions(r) == {"g": "0-0"} and r.xpending(S, "g")["pending"] == 5
    got = admin("group", "rewind", "g", "$", url=server.url)
    assert got.stdout == "moved group g on app:event to $: 30 entries skipped: the group will not read them\n"
    assert positions(r) == {"g": ids[29]}
    got = admin("group", "rewind", "g", ids[9], url=server.url)
    assert got.stdout == (
        f"rewound group g on app:event to {ids[9]}: 20 entries unread again (its pending entries stay pending)\n"
    )
    assert positions(r) == {"g": ids[9]}
    assert [i.decode() for _, entries in r.xreadgroup("g", "c1", {S: ">"}) for i, _ in entries] == ids[10:]

    got = admin("group", "rewind", "nope", "0", url=server.url)
    assert (got.returncode, got.stderr) == (1, "Error: no group 'nope' on stream 'app:event' (its groups: g)\n")
    got = admin("group", "rewind", "g", "yesterday", url=server.url)
    assert got.returncode == 2 and "'yesterday': use $ (the end), 0 (the start) or an ID" in got.stderr
    assert positions(r) == {"g": ids[29]}


def test_delete_asks_saying_what_goes_with_the_group(r, server):
    ids = [r.xadd(S, {"sensor_id": "sensor1", "n": i}) for i in range(10)]
    r.xgroup_create(S, "g", id="0")
    r.xgroup_create(S, "other", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=2)
    r.xreadgroup("g", "c2", {S: ">"}, count=1)
    question = (
        "delete group g of app:event, with its 2 consumers and 3 pending entries (delivered, never acknowledged: "
        "nobody in the group will process them)? [y/N]: "
    )
    got = admin("group", "delete", "g", url=server.url, input="n\n")
    assert (got.returncode, got.stdout, got.stderr) == (1, question, "Aborted!\n")
    assert set(positions(r)) == {"g", "other"}
    got = admin("group", "delete", "g", url=server.url, input="y\n")
    assert (got.returncode, got.stdout) == (
        0,
        question + "deleted group g of app:event (3 pending entries went with it)\n",
    )
    assert set(positions(r)) == {"other"} and r.xlen(S) == len(ids)  # the entries stay
    got = admin("group", "delete", "other", "--yes", url=server.url)
    assert got.stdout == "deleted group other of app:event (0 pending entries went with it)\n"
    got = admin("group", "delete", "g", "--yes", url=server.url)
    assert (got.returncode, got.stderr) == (1, "Error: no group 'g' on stream 'app:event' (its groups: none)\n")
    got = admin("group", "delete", "g", "--yes", "--stream", "nothing:here", url=server.url)
    assert got.returncode == 1 and got.stderr.startswith("Error: no stream 'nothing:here' at 127.0.0.1:")


def test_list_shows_each_group_from_xinfo_groups(r, server):
    assert admin("group", "list", url=server.url).stdout == "Groups of app:event\n  none yet\n"
    ids = [r.xadd(S, {"sensor_id": "sensor1", "n": i}).decode() for i in range(10)]
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=4)
    r.xgroup_create(S, "later", id=ids[5])  # the server cannot tell this one's lag
    got = admin("group", "list", url=server.url)
    assert got.returncode == 0, got.stderr
    assert re.fullmatch(
        rf"Groups of app:event\n  GROUP +CONSUMERS +PENDING +LAST DELIVERED +LAG\n  g +1 +4 +{ids[3]} +6\n"
        rf"  later +0 +0 +{ids[5]} +\?\n  \(\? the server cannot tell the lag: `admin.py info` counts it\)\n",
        got.stdout,
    )
    doc = json.loads(admin("group", "list", "--json", url=server.url).stdout)
    assert doc == {
        "stream": S,
        "groups": [
            {"name": "g", "shards": 1, "consumers": 1, "pending": 4, "last_delivered_id": ids[3], "lag": 6},
            {"name": "later", "shards": 1, "consumers": 0, "pending": 0, "last_delivered_id": ids[5], "lag": None},
        ],
    }


def test_info_warns_about_a_group_without_consumers_that_holds_back_trim(r, server):
    ids = [r.xadd(S, {"sensor_id": "sensor1", "n": i}) for i in range(12)]
    r.xgroup_create(S, "group1", id="0")
    r.xreadgroup("group1", "c1", {S: ">"})
    r.xack(S, "group1", *ids)  # group1 is done with all of them
    assert admin("group", "create", "grup1", "--start-from", "0", url=server.url).returncode == 0  # the typo
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    message = NO_CONSUMERS.format(g="grup1", n=12)
    assert doc["warnings"] == [
        {"kind": "no_consumers", "group": "grup1", "consumer": None, "count": 12, "message": message}
    ]
    assert admin("info", url=server.url).stdout.endswith(f"Warnings\n  ! {message}\n")
    got = admin("trim", "--maxlen", "2", "--safe", url=server.url)  # what it holds back
    assert got.stdout == (
        "removed 0 entries from app:event; 12 left\n"
        "kept 10 entries that --maxlen 2 would have removed, because group grup1 has not read 10\n"
    )

    got = admin("group", "delete", "grup1", "--yes", url=server.url)  # what the warning says to do
    assert got.returncode == 0
    assert json.loads(admin("info", "--json", url=server.url).stdout)["warnings"] == []
    r.xgroup_create(S, "idle", id="$")  # no consumers, but nothing unread: holds nothing back
    assert json.loads(admin("info", "--json", url=server.url).stdout)["warnings"] == []


# -- a sharded stream: one node, and a cluster -----------------------------------------------------
def test_group_commands_act_on_every_shard(place):
    url, db = place.url, place.db
    keys = shards.keys(S, 3)
    for sensor in ("sensor1", "sensor2", "sensor3", "sensor4"):
        got = run("producer.py", sensor, "--shards", 3, "--count", 10, "-q", url=url)
        assert got.returncode == 0, got.stderr
    lengths = [db.xlen(key) if db.exists(key) else 0 for key in keys]
    assert sum(lengths) == 40

    got = admin("group", "create", "g", "--start-from", "0", url=url)
    assert got.stdout == (
        "created group g on app:event (3 shards) at 0: it reads the 40 entries there now, then what is added\n"
    )
    assert all(positions(db, key) == {"g": "0-0"} for key in keys)  # every shard, made where it was missing
    got = admin("group", "list", url=url)
    assert re.search(r"\n  g +3/3 +0 +0 +0-0 +40\n", got.stdout)
    doc = json.loads(admin("info", "--json", url=url).stdout)
    assert [(w["kind"], w["count"]) for w in doc["warnings"]] == [("no_consumers", 40)]

    got = admin("group", "rewind", "g", "$", url=url)
    assert (
        got.stdout == "moved group g on app:event (3 shards) to $: 40 entries skipped: the group will not read them\n"
    )
    got = admin("group", "rewind", "g", "0", url=url)
    assert got.stdout == (
        "rewound group g on app:event (3 shards) to 0: 40 entries unread again (its pending entries stay pending)\n"
    )

    db.xgroup_destroy(keys[1], "g")  # a shard without the group: its entries are read by no one in g
    doc = json.loads(admin("info", "--json", url=url).stdout)
    assert doc["warnings"][-1] == {
        "kind": "shards_without_group",
        "group": "g",
        "consumer": None,
        "count": 1,
        "message": "shard 1 of app:event has no group g: its entries are read by no one in g "
        "(`admin.py group create g --start-from 0` adds it there)",
    }
    got = admin("group", "create", "g", "--start-from", "0", url=url)  # what the warning says: fills the gap only
    assert got.stdout == (
        "created group g on shard 1 of app:event (3 shards) (shards 0, 2 had it already: left as they were) at 0: "
        f"it reads the {plural_entries(lengths[1])} there now, then what is added\n"
    )
    assert all(positions(db, key) == {"g": "0-0"} for key in keys)
    got = admin("group", "create", "g", url=url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: group g exists already on app:event (3 shards): `admin.py group rewind g TO` moves it, "
        "`admin.py group delete g` deletes it\n",
    )

    got = admin("group", "delete", "g", "--yes", url=url)
    assert got.stdout == "deleted group g of app:event (3 shards) (0 pending entries went with it)\n"
    assert all(db.xinfo_groups(key) == [] for key in keys)


def plural_entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"
