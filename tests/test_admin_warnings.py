"""What `admin.py info` warns about beyond one stream key: groups left on the single key of a
stream that was sharded later, a server that may evict the stream; and `admin.py cleanup` pointed
at a read-only replica (one line, no script SHA)."""

from __future__ import annotations

import json
import re

import redis
from conftest import admin, run, wait_for

from stream_pubsub import shards

S = "app:event"


def test_groups_on_the_single_key_of_a_sharded_stream_are_shown_and_warned_about(r, server):
    """A group made on `app:event` before the stream was sharded reads nothing the producers add now."""
    r.xgroup_create(S, "g1", id="$", mkstream=True)  # consumer-less: what a consumer started before sharding leaves
    got = run("producer.py", "s1", "--shards", 6, "--count", 50, "-q", url=server.url)
    assert got.returncode == 0, got.stderr  # (accepted: the single key holds a group, not entries)
    assert r.get(shards.record_key(S)) == b"6" and r.xlen(S) == 0

    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    assert doc["stream"]["length"] == 50 and doc["groups"] == []  # no shard has a group
    assert doc["unsharded"]["key"] == S and doc["unsharded"]["length"] == 0
    assert [(g["name"], g["lag"], g["consumers"]) for g in doc["unsharded"]["groups"]] == [("g1", 0, [])]
    message = (
        "group g1 reads app:event as one key, but the stream is sharded into 6: what the producers add now goes to "
        "the shards, which g1 does not read there; restart its consumers (they follow the record) or, once nothing "
        "reads app:event any more, delete the group from it (`XGROUP DESTROY app:event g1`)"
    )
    assert doc["warnings"] == [
        {"kind": "unsharded_group", "group": "g1", "consumer": None, "count": 0, "message": message}
    ]
    got = admin("info", url=server.url)
    assert got.returncode == 0, got.stderr
    assert "\nGroups\n  none yet (`consumer.py GROUP CONSUMER` creates one)\n" in got.stdout
    assert "\n  groups on the unsharded key app:event: g1 (lag 0)\n" in got.stdout
    assert got.stdout.endswith(f"\nWarnings\n  ! {message}\n")

    r.xgroup_destroy(S, "g1")  # as the warning says: the single key has no group left, no warning
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    assert (doc["unsharded"], doc["warnings"]) == (None, [])


def test_shards_a_group_is_missing_from_are_named(r, server):
    got = run("producer.py", "s1", "--shards", 6, "--count", 10, "-q", url=server.url)
    assert got.returncode == 0, got.stderr
    keys = shards.keys(S, 6)
    for i in (0, 1, 3, 4):
        r.xgroup_create(keys[i], "g1", id="$", mkstream=True)
        r.xgroup_createconsumer(keys[i], "g1", "c1")
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    assert [(w["kind"], w["group"], w["count"], w["message"]) for w in doc["warnings"]] == [
        (
            "shards_without_group",
            "g1",
            2,
            "shards 2, 5 of app:event have no group g1: their entries are read by no one in g1 "
            "(`admin.py group create g1 --start-from 0` adds it there)",
        )
    ]
    assert "shards 2, 5 of app:event have no group g1" in admin("info", url=server.url).stdout
    assert json.loads(admin("info", "--json", "--shard", 2, url=server.url).stdout)["warnings"] == []  # one shard


def test_a_server_that_may_evict_the_stream_is_warned_about(own_server):
    server = own_server("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    client = redis.Redis.from_url(server.url)
    client.xadd(S, {"sensor_id": "sensor1"})
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    [found] = doc["warnings"]
    assert found["kind"] == "eviction" and found["message"].startswith(
        "Redis evicts keys when it is full (maxmemory-policy allkeys-lru): the stream, its groups and pending "
        "entries can vanish without a word. Set maxmemory-policy noeviction"
    )
    assert f"\nWarnings\n  ! {found['message']}\n" in admin("info", url=server.url).stdout

    client.config_set("maxmemory-policy", "noeviction")  # what it says to do: no warning
    assert json.loads(admin("info", "--json", url=server.url).stdout)["warnings"] == []
    client.close()


def test_cleanup_on_a_replica_is_one_line_without_the_script_sha(own_server, tmp_path):
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    master = own_server(folder=tmp_path / "master")
    replica = own_server("--replicaof", "127.0.0.1", str(master.port), folder=tmp_path / "replica")
    db, copy = redis.Redis.from_url(master.url), redis.Redis.from_url(replica.url)
    db.xgroup_create(S, "g", id="$", mkstream=True)
    db.xgroup_createconsumer(S, "g", "gone")  # idle, holds nothing: cleanup would remove it
    wait_for(lambda: copy.exists(S) and copy.xinfo_consumers(S, "g"), what="the replica to have the consumer")

    got = admin("cleanup", "g", "--idle", 1, url=replica.url)
    assert (got.returncode, got.stdout) == (1, "")
    assert got.stderr == (
        f"Error: Redis at 127.0.0.1:{replica.port} is a read-only replica: run cleanup against its master\n"
    )
    assert not re.search(r"[0-9a-f]{40}", got.stderr)
    assert [c["name"] for c in db.xinfo_consumers(S, "g")] == [b"gone"]  # nothing changed

    got = admin("cleanup", "g", "--idle", 1, url=master.url)  # against the master, as it says
    assert got.returncode == 0 and got.stdout.startswith("removed gone (idle ")
    db.close()
    copy.close()
