"""admin.py on a sharded stream and on a Redis Cluster: every command covers every shard, --shard I
narrows it to one, and on a cluster each shard is read from the node that holds it.

The sharded state is written with redis-py as a sharded producer and consumer leave it: the record
`app:event:shards`, entries on the shard keys, groups and pending entries on every shard, dead
letters on each shard's companion dead-letter stream.
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
from conftest import admin, admin_json, id_order, read_lines, spawn, stop, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards
from stream_pubsub.dead_letters import dead_letter

S, N = "app:event", 12
KEYS = shards.keys(S, N)
DLQS = [shards.companion("app:event:dlq", i, N) for i in range(N)]


def sharded_stream(db, n: int = N) -> list[list[str]]:
    """n shards, recorded; shard i holds i % 4 + 2 readings. Group g (from 0) on every shard: c1
    read the first entry, c2 the second and acknowledged it; group audit (from 0, never read) on the
    even shards only. Every third shard dead-lettered its first entry (c1's: acknowledged with it)."""
    db.set(shards.record_key(S), n)
    keys, dlqs, ids = shards.keys(S, n), [shards.companion("app:event:dlq", i, n) for i in range(n)], []
    for i, key in enumerate(keys):
        ids.append([db.xadd(key, {"sensor_id": f"sensor{i}", "n": j}).decode() for j in range(i % 4 + 2)])
        db.xgroup_create(key, "g", id="0")
        if i % 2 == 0:
            db.xgroup_create(key, "audit", id="0")
        db.xreadgroup("g", "c1", {key: ">"}, count=1)
        db.xreadgroup("g", "c2", {key: ">"}, count=1)
        db.xack(key, "g", ids[i][1])
        if i % 3 == 0:
            dead_letter(
                db,
                dlq=dlqs[i],
                stream=key,
                group="g",
                consumer="c1",
                entry_id=ids[i][0],
                fields=db.xrange(key, ids[i][0], ids[i][0])[0][1],
                deliveries=5,
                error=f"bad reading on shard {i}",
            )
    return ids


def everything(db) -> dict:
    """What Redis holds, to check that a command changed nothing: every key's entries, the groups."""
    held = {key: db.xrange(key) for key in [S, shards.record_key(S), *KEYS, *DLQS] if db.type(key) == b"stream"}
    groups = {key: db.xinfo_groups(key) for key in KEYS if key in held}
    return {"entries": held, "groups": groups, "record": db.get(shards.record_key(S))}


# -- info ----------------------------------------------------------------------------------------
def test_info_json_totals_are_the_sums_of_the_shards_each_on_its_node(cluster, rc):
    sharded_stream(rc)
    rc.xtrim(KEYS[4], maxlen=1, approximate=False)  # audit never read it; c1's pending entry is gone
    doc = admin_json("info", url=cluster.nodes[2].url)
    parts = doc["shards"]
    assert [p["stream"]["key"] for p in parts] == KEYS
    assert all(set(p) == {"stream", "groups", "dead_letters", "warnings", "node"} for p in parts)
    for key, part in zip(KEYS, parts):  # the node that really holds each key
        assert rc.cluster_keyslot(key) == shards.slot(key)
        assert part["node"] == f"127.0.0.1:{cluster.owner(shards.slot(key)).port}" == rc.get_node_from_key(key).name
    assert len({p["node"] for p in parts}) == 3  # spread over the three masters

    stream = doc["stream"]
    assert stream["key"] == S and stream["exists"] is True
    for field in ("length", "entries_added", "removed"):
        assert stream[field] == sum(p["stream"][field] for p in parts), field
    assert stream["length"] == sum(rc.xlen(key) for key in KEYS) == 41
    assert (stream["entries_added"], stream["removed"]) == (42, 1)
    assert stream["first_id"] == min((p["stream"]["first_id"] for p in parts), key=id_order)
    assert stream["last_id"] == max((p["stream"]["last_id"] for p in parts), key=id_order)

    groups = {g["name"]: g for g in doc["groups"]}
    assert list(groups) == ["audit", "g"]
    for name, group in groups.items():
        each = [g for p in parts for g in p["groups"] if g["name"] == name]
        assert len(each) == (6 if name == "audit" else 12)
        for field in ("pending", "lag", "trimmed_unread", "pending_trimmed"):
            assert group[field] == sum(g[field] for g in each), (name, field)
        consumers = {c["name"]: c for c in group["consumers"]}
        for member, merged in consumers.items():
            held = [c for g in each for c in g["consumers"] if c["name"] == member]
            assert merged["pending"] == sum(c["pending"] for c in held)
            assert merged["idle_ms"] == min(c["idle_ms"] for c in held)
    g = groups["g"]
    assert g["pending"] == sum(rc.xpending(key, "g")["pending"] for key in KEYS) == 8  # c1's, but not dead-lettered
    assert g["entries_read"] == sum(x["entries_read"] for p in parts for x in p["groups"] if x["name"] == "g") == 24
    assert {c["name"]: c["pending"] for c in g["consumers"]} == {"c1": 8, "c2": 0}
    assert (g["lag"], groups["audit"]["lag"]) == (18, 17)
    assert (groups["audit"]["trimmed_unread"], g["pending_trimmed"]) == (1, 1)
    assert doc["dead_letters"] == {"key": "app:event:dlq", "length": 4}
    assert [p["dead_letters"] for p in parts] == [{"key": d, "length": int(i % 3 == 0)} for i, d in enumerate(DLQS)]
    assert [(w["kind"], w["group"], w["count"]) for w in doc["warnings"]] == [
        ("trimmed_unread", "audit", 1),
        ("no_consumers", "audit", 17),
        ("pending_trimmed", "g", 1),
        ("dead_letters", None, 4),
        ("shards_without_group", "audit", 6),  # audit is on the even shards only
    ]
    assert doc["warnings"][-1]["message"] == (
        "shards 1, 3, 5, 7, 9, 11 of app:event have no group audit: their entries are read by no one in audit "
        "(`admin.py group create audit --start-from 0` adds it there)"
    )
    assert doc["unsharded"] is None  # no group on the single key app:event

    got = admin("info", "--maxlen", "10", url=cluster.nodes[0].url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("Stream app:event (12 shards)\n  length        41 entries (first ")
    assert "  cap           MAXLEN 10 per shard, 34% full\n" in got.stdout
    assert "  dead letters  4 entries in app:event:dlq (12 shards)\n" in got.stdout
    rows = got.stdout.split("\nShards\n")[1].split("\n\n")[0].splitlines()[1:]
    assert [row.split()[:4] for row in rows] == [
        [str(i), key, rc.get_node_from_key(key).name, str(rc.xlen(key))] for i, key in enumerate(KEYS)
    ]
    assert re.search(r"\n  g +2 +8 +\S+ +18\n", got.stdout)
    assert not rc.exists(shards.record_key("app:event:dlq"))  # admin wrote nothing


def test_info_and_watch_on_a_sharded_stream_of_one_node(r, server):
    sharded_stream(r)
    doc = admin_json("info", url=server.url)
    assert doc["stream"]["length"] == 42 and len(doc["shards"]) == N
    assert {p["node"] for p in doc["shards"]} == {f"127.0.0.1:{server.port}"}
    watch = spawn("admin.py", "watch", "--json", "--interval", "0.2", url=server.url)
    first = json.loads(watch.stdout.readline())
    assert set(first) == {"stream", "groups", "dead_letters", "warnings", "unsharded", "shards", "rates"}
    assert first["stream"]["length"] == 42 and len(first["shards"]) == N
    r.xadd(KEYS[0], {"sensor_id": "sensor0"})
    r.xadd(KEYS[7], {"sensor_id": "sensor7"})
    for _ in range(25):  # refreshes every 0.2 s: within 5 s
        if (later := json.loads(watch.stdout.readline()))["stream"]["length"] != 42:
            break
    assert later["stream"]["length"] == 44 and later["shards"][7]["stream"]["length"] == 6
    out, err = stop(watch, signal.SIGINT, timeout=5)
    assert (watch.returncode, err) == (0, "")


def test_shard_narrows_info_pending_range_and_dlq_to_one_shard(place):
    ids = sharded_stream(place.db)
    doc = admin_json("info", "--shard", "3", url=place.url)
    [part] = doc["shards"]
    assert part["stream"]["key"] == KEYS[3] and part["node"] == place.node_of(KEYS[3])
    assert doc["stream"] == part["stream"] and doc["dead_letters"] == {"key": DLQS[3], "length": 1}
    assert doc["stream"]["length"] == 5 and [g["name"] for g in doc["groups"]] == ["g"]  # audit: even shards
    got = admin("info", "--shard", "3", url=place.url)
    assert got.stdout.startswith(f"Stream {KEYS[3]} (shard 3 of 12)\n")

    entries = admin_json("range", "--shard", "3", url=place.url)["entries"]
    assert [(e["id"], e["stream"]) for e in entries] == [(i, KEYS[3]) for i in ids[3]]
    pending = admin_json("pending", "g", "--shard", "1", url=place.url)
    assert (pending["pending"], [(e["id"], e["stream"]) for e in pending["entries"]]) == (1, [(ids[1][0], KEYS[1])])
    assert admin_json("pending", "g", "--shard", "3", url=place.url)["pending"] == 0  # dead-lettered
    listed = admin_json("dlq", "list", "--shard", "6", url=place.url)
    assert (listed["key"], listed["length"], [e["original_id"] for e in listed["entries"]]) == (DLQS[6], 1, [ids[6][0]])
    got = admin("pending", "audit", "--shard", "1", url=place.url)
    assert (got.returncode, got.stderr) == (
        1,
        f"Error: no group 'audit' on stream {KEYS[1]} (shard 1 of 12) (its groups: g)\n",
    )


@pytest.mark.parametrize(
    "command",
    [
        "info",
        "watch",
        "pending g",
        "range",
        "tail",
        "dlq list",
        "dlq replay --all",
        "trim --maxlen 1",
        "cleanup g --idle 1",
        "group list",
        "group create g2",
        "group rewind g 0",
        "group delete g --yes",
    ],
)
def test_out_of_range_shard_is_one_usage_line_and_changes_nothing(place, command):
    sharded_stream(place.db)
    before = everything(place.db)
    got = admin(*command.split(), "--shard", "12", url=place.url, timeout=10)
    assert (got.returncode, got.stdout) == (2, "")
    assert got.stderr == f"Error: --shard 12: app:event at {place.where} has 12 shards (--shard 0 to 11)\n"
    assert everything(place.db) == before


def test_shard_on_an_unsharded_stream_and_nothing_recorded(place):
    place.db.xadd(S, {"sensor_id": "sensor1"})
    got = admin("range", "--shard", "1", url=place.url)
    assert (got.returncode, got.stderr) == (
        2,
        f"Error: --shard 1: app:event at {place.where} is not sharded (1 shard: --shard 0)\n",
    )
    assert admin("range", "--shard", "0", url=place.url).stdout.count("sensor_id=sensor1") == 1
    assert place.db.get(shards.record_key(S)) is None  # admin finds the number, never records one


# -- the commands that read ----------------------------------------------------------------------
def test_pending_merges_every_shard_oldest_first(place):
    ids = sharded_stream(place.db)
    expected = [(ids[i][0], KEYS[i]) for i in range(N) if i % 3]  # c1's first entries, not dead-lettered
    expected.sort(key=lambda e: id_order(e[0]))
    doc = admin_json("pending", "g", url=place.url)
    assert (doc["stream"], doc["pending"], doc["consumers"]) == (S, 8, {"c1": 8})
    assert [(e["id"], e["stream"]) for e in doc["entries"]] == expected
    assert all(e["consumer"] == "c1" and e["deliveries"] == 1 and e["in_stream"] for e in doc["entries"])

    got = admin("pending", "g", "--count", "3", url=place.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "group g on app:event (12 shards): 8 pending entries (c1 8)"
    assert [line.split()[:3] for line in lines[2:5]] == [[i, key, "c1"] for i, key in expected[:3]]
    assert lines[-1] == "  ... more not shown (raise --count above 3)"
    got = admin("pending", "nope", url=place.url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: no group 'nope' on stream app:event (12 shards) (its groups: audit, g)\n",
    )
    got = admin("pending", "g", "--consumer", "c9", url=place.url)
    assert (got.returncode, got.stderr) == (1, "Error: no consumer 'c9' in group 'g' (its consumers: c1, c2)\n")


def test_range_merges_shards_in_id_order_with_count_and_reverse(place):
    db = place.db
    db.set(shards.record_key(S), N)
    added = []  # (id, shard): shard i gets IDs i+1, i+13, i+25 (interleaved), shards 0 and 5 also 100-0
    for n in range(3):
        for i in range(N):
            added.append((db.xadd(KEYS[i], {"n": n}, id=f"{i + 1 + 12 * n}-0").decode(), i))
    for i in (0, 5):
        added.append((db.xadd(KEYS[i], {"n": "tie"}, id="100-0").decode(), i))
    added.sort(key=lambda e: (id_order(e[0]), e[1]))

    doc = admin_json("range", "--count", "0", url=place.url)
    assert doc["more"] is False and [(e["id"], e["stream"]) for e in doc["entries"]] == [(i, KEYS[s]) for i, s in added]
    got = admin("range", "10", "15", url=place.url)
    assert got.stdout.splitlines() == [f"{i}-0 {KEYS[(i - 1) % 12]} n={(i - 1) // 12}" for i in range(10, 16)]
    doc = admin_json("range", "--reverse", "--count", "4", url=place.url)
    assert doc["more"] is True
    assert [(e["id"], e["stream"]) for e in doc["entries"]] == [
        ("100-0", KEYS[5]),
        ("100-0", KEYS[0]),
        ("36-0", KEYS[11]),
        ("35-0", KEYS[10]),
    ]
    got = admin("range", "30", "+", "--count", "8", url=place.url)  # cut between the two 100-0
    assert [line.split()[:2] for line in got.stdout.splitlines()] == [
        *[[f"{i}-0", KEYS[(i - 1) % 12]] for i in range(30, 37)],
        ["100-0", KEYS[0]],
    ]
    assert got.stderr == "(more entries follow: raise --count, or go on with `admin.py range 100-0 +`)\n"
    got = admin("range", "200", url=place.url)
    assert (got.returncode, got.stderr) == (0, "no entries in app:event (12 shards) between 200 and +\n")


def test_tail_follows_every_shard_until_ctrl_c(place):
    db = place.db
    ids = sharded_stream(db)
    tail = spawn("admin.py", "tail", "--block", "200", url=place.url)
    assert tail.stderr.readline() == "tail app:event (12 shards): entries after now (Ctrl-C to stop)\n"
    new = [(db.xadd(KEYS[i], {"sensor_id": f"new{i}"}).decode(), KEYS[i]) for i in (2, 9, 5, 11)]
    got = sorted(line.split()[:3] for line in read_lines(tail.stdout, 4))
    assert got == sorted([i, key, f"sensor_id=new{n}"] for (i, key), n in zip(new, (2, 9, 5, 11)))
    out, err = stop(tail, signal.SIGINT, timeout=5)
    assert (tail.returncode, out, err) == (0, "", "tail stopped after 4 entries\n")

    tail = spawn("admin.py", "tail", "--from", "0", "--json", url=place.url)
    seen = [json.loads(line) for line in read_lines(tail.stdout, 46)]
    assert sorted((e["stream"], e["id"]) for e in seen) == sorted(
        [(KEYS[i], x) for i in range(N) for x in ids[i]] + [(key, i) for i, key in new]
    )
    stop(tail, signal.SIGINT, timeout=5)
    assert tail.returncode == 0


# -- dead letters --------------------------------------------------------------------------------
def test_dlq_list_show_replay_and_purge_across_shards(place):
    db = place.db
    ids = sharded_stream(db)
    dead = sorted(((db.xrange(DLQS[i])[0][0].decode(), i) for i in (0, 3, 6, 9)), key=lambda d: id_order(d[0]))
    listed = admin_json("dlq", "list", url=place.url)
    assert (listed["key"], listed["length"], listed["more"]) == ("app:event:dlq", 4, False)
    assert [(e["id"], e["key"], e["stream"], e["original_id"]) for e in listed["entries"]] == [
        (d, DLQS[i], KEYS[i], ids[i][0]) for d, i in dead
    ]
    got = admin("dlq", "list", "--count", "2", url=place.url)
    assert got.stdout.splitlines()[0] == "app:event:dlq (12 shards): 4 dead letters"
    assert re.search(rf"\n  {dead[1][0]} +{re.escape(KEYS[dead[1][1]])} {ids[dead[1][1]][0]} +g/c1 +5 +bad", got.stdout)
    assert got.stdout.endswith("  ... more not shown (raise --count above 2)\n")

    first, shard = dead[0]
    shown = admin_json("dlq", "show", first, url=place.url)
    assert (shown["key"], shown["stream"], shown["error"]) == (
        DLQS[shard],
        KEYS[shard],
        f"bad reading on shard {shard}",
    )

    got = admin("dlq", "replay", first, url=place.url)  # back on the shard it came from
    assert got.returncode == 0, got.stderr
    back = db.xrevrange(KEYS[shard], count=1)[0]
    assert got.stdout == f"replayed {first} (was {ids[shard][0]}) to {KEYS[shard]} as {back[0].decode()}\n"
    assert back[1] == {b"sensor_id": f"sensor{shard}".encode(), b"n": b"0"}
    assert db.xlen(DLQS[shard]) == 0

    lengths = {i: db.xlen(KEYS[i]) for i in range(N)}
    got = admin("dlq", "replay", "--all", "--shard", str(dead[1][1]), url=place.url)
    assert got.stderr == f"replayed 1 dead letter from {DLQS[dead[1][1]]}\n"
    got = admin("dlq", "replay", "--all", url=place.url)
    assert (got.returncode, got.stderr) == (0, "replayed 2 dead letters from app:event:dlq (12 shards)\n")
    for i in range(N):  # each went back to its own shard, nothing anywhere else
        assert db.xlen(KEYS[i]) == lengths[i] + (i in (dead[1][1], dead[2][1], dead[3][1]))
        assert db.xlen(DLQS[i]) == 0
    assert not any(k.startswith(b"dlq.") for key in KEYS for _, f in db.xrange(key) for k in f)

    for i in (1, 4, 4, 10):  # four more, two on shard 4; an entry is dead-lettered once, while pending
        fields = {"sensor_id": "s", "temp": "0.5", "humidity": "0.5"}
        entry_id = db.xadd(KEYS[i], fields)
        db.xreadgroup("g", "c1", {KEYS[i]: ">"})
        dead_letter(
            db,
            dlq=DLQS[i],
            stream=KEYS[i],
            group="g",
            consumer="c1",
            entry_id=entry_id,
            fields=fields,
            deliveries=6,
            error="again",
        )
    got = admin("dlq", "purge", url=place.url, input="n\n")
    assert got.returncode == 1 and "delete all 4 dead letters in app:event:dlq (12 shards) for good?" in got.stdout
    named = db.xrange(DLQS[10])[0][0].decode()
    got = admin("dlq", "purge", named, "--yes", "--shard", "10", url=place.url)  # IDs are per key: name the shard
    assert (got.returncode, got.stdout) == (0, f"deleted 1 dead letter from {DLQS[10]}\n")
    assert db.xlen(DLQS[10]) == 0 and db.xlen(DLQS[4]) == 2
    got = admin("dlq", "purge", "--yes", url=place.url)
    assert (got.returncode, got.stdout) == (0, "deleted 3 dead letters from app:event:dlq (12 shards)\n")
    assert sum(db.xlen(key) for key in DLQS) == 0
    got = admin("dlq", "show", named, url=place.url)
    assert (got.returncode, got.stderr) == (
        1,
        f"Error: no entry {named} in the dead-letter stream app:event:dlq (12 shards) "
        "(`admin.py dlq list` shows what is there)\n",
    )


def test_a_dead_letter_id_that_two_shards_hold_needs_shard(place):
    db = place.db
    db.set(shards.record_key(S), N)
    for i in (2, 7):
        db.xadd(DLQS[i], {"sensor_id": f"sensor{i}", "dlq.stream": KEYS[i], "dlq.id": "1-0"}, id="5-0")
    before = everything(db)
    for command in (["show", "5-0"], ["replay", "5-0"], ["purge", "5-0", "--yes"]):
        got = admin("dlq", *command, url=place.url)
        assert (got.returncode, got.stderr) == (
            1,
            "Error: 5-0 is in 2 dead-letter shards (2, 7): name one with --shard I\n",
        )
    assert everything(db) == before
    got = admin("dlq", "replay", "5-0", "--shard", "7", url=place.url)
    assert got.returncode == 0, got.stderr
    assert db.xlen(DLQS[7]) == 0 and db.xlen(DLQS[2]) == 1
    assert db.xrange(KEYS[7])[0][1] == {b"sensor_id": b"sensor7"}


# -- upkeep --------------------------------------------------------------------------------------
def test_trim_safe_keeps_per_shard_what_a_group_still_needs(place):
    db = place.db
    ids = sharded_stream(db)  # shard i: i % 4 + 2 entries; g: the first pending (or dead-lettered), the second acked
    got = admin("trim", "--maxlen", "1", "--safe", url=place.url)
    assert got.returncode == 0, got.stderr
    for i in range(N):  # audit (even shards) has read nothing: keeps all; g keeps from its first still needed
        needed = 0 if i % 2 == 0 else (0 if i % 3 else 2)
        assert [x.decode() for x, _ in db.xrange(KEYS[i])] == ids[i][needed:], i
    lines = got.stdout.splitlines()
    assert lines[-1] == "removed 4 entries from app:event (12 shards) in all; 38 left"
    said = {line: lines[n + 1] if n + 1 < len(lines) else None for n, line in enumerate(lines)}
    assert said[f"removed 0 entries from {KEYS[0]}; 2 left"] == (
        "kept 1 entry that --maxlen 1 would have removed, because group audit has not read 1"
    )
    assert said[f"removed 2 entries from {KEYS[3]}; 3 left"] == (
        "kept 2 entries that --maxlen 1 would have removed, because group g has not read 2"
    )
    assert said[f"removed 0 entries from {KEYS[7]}; 5 left"] == (
        "kept 4 entries that --maxlen 1 would have removed, because group g has not read 2 and not acknowledged 1"
    )
    assert said[f"removed 2 entries from {KEYS[9]}; 1 left"] == f"removed 0 entries from {KEYS[10]}; 4 left"
    assert got.stderr == ""

    got = admin("trim", "--maxlen", "1", "--shard", "1", url=place.url)  # without --safe: says what g lost
    assert (got.returncode, got.stdout) == (0, f"removed 2 entries from {KEYS[1]}; 1 left\n")
    assert got.stderr == (
        f"warning: of the entries removed from {KEYS[1]}, group g had not acknowledged 1 (--safe keeps such entries)\n"
    )
    assert db.xlen(KEYS[1]) == 1 and db.xlen(KEYS[5]) == 3


def test_cleanup_works_on_each_shards_group(place):
    db = place.db
    sharded_stream(db)  # c1 holds one pending entry on the shards not dead-lettered; c2 none
    for key in KEYS:
        db.xgroup_createconsumer(key, "g", "live")
    got = admin("cleanup", "g", "--idle", "60000", url=place.url)
    assert (
        got.stdout
        == "group g on app:event (12 shards), counted per shard: removed 0 consumers, kept 0; 36 active left alone\n"
    )
    time.sleep(2.0)
    for key in KEYS:
        db.xgroup_createconsumer(key, "g", "fresh")
    # --idle leaves 1.5 s for admin.py to start and reach the last shard: "fresh" must not pass for idle.
    got = admin("cleanup", "g", "--idle", "1500", "--claim-to", "fresh", url=place.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert (
        lines[-1]
        == "group g on app:event (12 shards), counted per shard: removed 36 consumers, kept 0; 12 active left alone"
    )
    assert (
        sum(line.startswith("removed c1 on ") and "its 1 pending entry handed to fresh first" in line for line in lines)
        == 8
    )
    for i, key in enumerate(KEYS):
        assert [c["name"] for c in db.xinfo_consumers(key, "g")] == [b"fresh"]
        pending = db.xpending_range(key, "g", "-", "+", 10)
        assert [p["consumer"] for p in pending] == ([] if i % 3 == 0 else [b"fresh"])


# -- an unsharded stream on a cluster ------------------------------------------------------------
def test_unsharded_stream_on_a_cluster_through_any_node(cluster, rc):
    ids = [rc.xadd(S, {"sensor_id": f"sensor{i}", "temp": "0.5"}).decode() for i in range(5)]
    rc.xgroup_create(S, "group1", id="0")
    rc.xreadgroup("group1", "c1", {S: ">"}, count=2)
    dlq = "{app:event}:dlq"  # the consumer's default on a cluster: in the stream's slot
    dead_letter(
        rc,
        dlq=dlq,
        stream=S,
        group="group1",
        consumer="c1",
        entry_id=ids[1],
        fields=rc.xrange(S, ids[1], ids[1])[0][1],
        deliveries=1,
        error="bad",
    )
    holder = f"127.0.0.1:{cluster.owner(shards.slot(S)).port}"
    for node in cluster.nodes:  # masters and replicas alike
        doc = admin_json("info", url=node.url)
        assert doc["stream"]["length"] == 5 and doc["dead_letters"] == {"key": dlq, "length": 1}
        assert [p["node"] for p in doc["shards"]] == [holder]
        assert doc["shards"][0]["stream"] == doc["stream"] and doc["shards"][0]["groups"] == doc["groups"]
    got = admin("info", url=cluster.nodes[4].url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("Stream app:event\n  length        5 entries")
    assert "  dead letters  1 entry in {app:event}:dlq\n" in got.stdout
    assert re.search(rf"\n  0 +app:event +{holder} +5 +1 +3 +1\n", got.stdout)
    pending = admin_json("pending", "group1", url=cluster.nodes[5].url)
    assert [e["id"] for e in pending["entries"]] == [ids[0]] and "stream" not in pending["entries"][0]
    assert [e["id"] for e in admin_json("range", url=cluster.nodes[3].url)["entries"]] == ids
    assert admin_json("dlq", "list", url=cluster.url)["key"] == dlq
    got = admin("dlq", "replay", "--all", url=cluster.nodes[2].url)
    assert (got.returncode, got.stderr) == (0, "replayed 1 dead letter from {app:event}:dlq\n")
    assert rc.xlen(S) == 6 and rc.xlen(dlq) == 0
    got = admin("trim", "--maxlen", "2", "--safe", url=cluster.nodes[1].url)
    assert got.stdout.startswith("removed 0 entries from app:event; 6 left\nkept 4 entries")
    assert not rc.exists(shards.record_key(S))


@pytest.mark.slow
def test_tail_on_a_cluster_carries_on_when_a_master_dies(own_cluster):
    cluster = own_cluster()
    db = RedisCluster.from_url(cluster.url)
    db.set(shards.record_key(S), 6)
    keys = shards.keys(S, 6)
    tail = spawn("admin.py", "tail", "--block", "300", url=cluster.nodes[0].url)
    assert tail.stderr.readline() == "tail app:event (6 shards): entries after now (Ctrl-C to stop)\n"
    before = {db.xadd(key, {"n": "before"}).decode() + " " + key for key in keys}
    assert {line.rsplit(" ", 1)[0] for line in read_lines(tail.stdout, 6)} == before
    victim = cluster.owner(shards.slot(keys[5]))  # the third master: shards 4 and 5
    assert victim is not cluster.nodes[0]
    victim.kill()

    def taken_over():
        try:
            return cluster.owner(shards.slot(keys[5])) is not victim and cluster.healthy()
        except RuntimeError:  # no master serves it yet
            return False

    wait_for(taken_over, timeout=20, what="a replica to take over")
    db.close()
    db = RedisCluster.from_url(cluster.url)
    after = {db.xadd(key, {"n": "after"}).decode() + " " + key for key in keys}
    assert {line.rsplit(" ", 1)[0] for line in read_lines(tail.stdout, 6)} == after
    out, err = stop(tail, signal.SIGINT, timeout=5)
    assert (tail.returncode, out) == (0, "")
    said = err.splitlines()
    assert said[-1] == "tail stopped after 12 entries" and len(said) % 2 == 1
    pairs = list(zip(said[:-1:2], said[1:-1:2]))
    for lost, back in pairs:
        assert lost.startswith(f"lost Redis at 127.0.0.1:{cluster.nodes[0].port} (") and lost.endswith("; reconnecting")
        assert back.startswith(f"reconnected to 127.0.0.1:{cluster.nodes[0].port} after ")
    # The two shards' reads failed at once: said once. (Once more if a node still said CLUSTERDOWN
    # when the reads resumed: see Connection.answers, which pings the masters but not the state.)
    assert [lost for lost, _ in pairs if "The cluster is down" not in lost] == [said[0]]
    db.close()
