"""Consumers started before a producer shards the stream: they follow the recorded number of shards.

`consumer.py g1 c1` on an empty stream creates its group on the single key; a producer then records
N shards and writes to the shard keys. A running consumer notices the record within about one
--block and reads every shard from its start; one started later creates the group on the shards
from their start, since the group already read the stream.
"""

from __future__ import annotations

import re

from conftest import run, spawn, stop, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards as sharding

STREAM, GROUP = "app:event", "g1"
LINE = re.compile(r"^(\d+-\d+) (sensor\d+) ", re.M)


def readings(stdout: str) -> set[tuple[str, str]]:
    """(sensor, ID) of each reading printed: IDs are unique per shard only."""
    return {(sensor, entry_id) for entry_id, sensor in LINE.findall(stdout)}


def produce(url: str, sensors: int, count: int) -> set[tuple[str, str]]:
    sent = set()
    for i in range(1, sensors + 1):
        done = run("producer.py", f"sensor{i}", "--shards", 6, "--count", count, url=url)
        assert done.returncode == 0, done.stderr
        sent |= {(f"sensor{i}", entry_id) for entry_id in re.findall(r"^message (\S+) sent$", done.stdout, re.M)}
    return sent


def test_a_running_consumer_follows_a_producer_that_shards_the_stream(server, r, tmp_path):
    follows(server.url, r, tmp_path)


def test_a_running_consumer_follows_a_producer_that_shards_the_stream_on_a_cluster(cluster, tmp_path):
    follows(cluster.url, RedisCluster.from_url(cluster.url), tmp_path)


def follows(url, client, tmp_path) -> None:
    out = open(tmp_path / "c1.out", "w")
    c1 = spawn("consumer.py", GROUP, "c1", "--block", 200, "--stats-interval", 0, url=url, stdout=out)
    out.close()
    wait_for(lambda: client.exists(STREAM) and client.xinfo_groups(STREAM), what="the group on the single key")

    sent = produce(url, sensors=6, count=100)

    assert len(sent) == 600
    wait_for(lambda: readings((tmp_path / "c1.out").read_text()) >= sent, timeout=20, what="every reading")
    _, err = stop(c1)
    assert c1.returncode == 0, err
    assert f"c1: {STREAM} is sharded now (6 shards, recorded by a producer): reading them all" in err.splitlines()
    assert readings((tmp_path / "c1.out").read_text()) == sent
    for key in sharding.keys(STREAM, 6):
        [group] = client.xinfo_groups(key)
        assert group["name"] == GROUP.encode() and group["pending"] == 0


def test_a_consumer_started_after_the_sharding_reads_the_shards_from_their_start(server, r):
    r.xgroup_create(STREAM, GROUP, id="$", mkstream=True)  # the group read the stream as one key
    sent = produce(server.url, sensors=3, count=50)

    done = run("consumer.py", GROUP, "c1", "--burst", url=server.url)

    assert done.returncode == 0, done.stderr
    assert readings(done.stdout) == sent  # not skipped at `$`
    assert f"created group {GROUP} on {STREAM} (6 shards), starting at 0" in done.stderr.splitlines()
