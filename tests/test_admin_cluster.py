"""admin.py on a Redis Cluster with a stream of one key, through any node (masters and replicas
alike); and `tail` of a sharded stream carrying on when a master dies.
"""

from __future__ import annotations

import re
import signal

import pytest
from conftest import admin, admin_json, read_lines, spawn, stop, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards
from stream_pubsub.dead_letters import dead_letter

S = "app:event"


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
