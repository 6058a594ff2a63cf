"""`admin.py info` and `watch` on a sharded stream, on one node and on a Redis Cluster: totals that
are the sums of the shards, each shard read from the node that holds it; and --shard I, which
narrows every command to one shard (one usage line when there is no such shard).

The sharded state is written with redis-py as a sharded producer and consumer leave it (see
sharded_stream in conftest.py): the record `app:event:shards`, entries on the shard keys, groups
and pending entries on every shard, dead letters on each shard's companion dead-letter stream.
"""

from __future__ import annotations

import json
import re
import signal

import pytest
from conftest import admin, admin_json, everything, id_order, sharded_stream, spawn, stop

from stream_pubsub import shards

S, N = "app:event", 12
KEYS = shards.keys(S, N)
DLQS = [shards.companion("app:event:dlq", i, N) for i in range(N)]


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
