"""Consumers started before a producer shards the stream: they follow the recorded number of shards.

`consumer.py g1 c1` on an empty stream creates its group on the single key; a producer then records
N shards and writes to the shard keys. A running consumer notices the record within about one
--block and reads every shard from its start; one started later creates the group on the shards
from their start, since the group already read the stream.
"""

from __future__ import annotations

from conftest import handlers, readings, run, sent_ids, spawn, stop, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards as sharding

STREAM, GROUP = "app:event", "g1"


def produce(url: str, sensors: int, count: int) -> set[tuple[str, str]]:
    sent = set()
    for i in range(1, sensors + 1):
        done = run("producer.py", f"sensor{i}", "--shards", 6, "--count", count, url=url)
        assert done.returncode == 0, done.stderr
        sent |= {(f"sensor{i}", entry_id) for entry_id in sent_ids(done.stdout)}
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
    wait_for(lambda: set(readings((tmp_path / "c1.out").read_text())) >= sent, timeout=20, what="every reading")
    _, err = stop(c1)
    assert c1.returncode == 0, err
    assert f"c1: {STREAM} is sharded now (6 shards, recorded by a producer): reading them all" in err.splitlines()
    assert set(readings((tmp_path / "c1.out").read_text())) == sent
    for key in sharding.keys(STREAM, 6):
        [group] = client.xinfo_groups(key)
        assert group["name"] == GROUP.encode() and group["pending"] == 0


def test_a_consumer_started_after_the_sharding_reads_the_shards_from_their_start(server, r):
    r.xgroup_create(STREAM, GROUP, id="$", mkstream=True)  # the group read the stream as one key
    sent = produce(server.url, sensors=3, count=50)

    done = run("consumer.py", GROUP, "c1", "--burst", url=server.url)

    assert done.returncode == 0, done.stderr
    assert set(readings(done.stdout)) == sent  # not skipped at `$`
    assert f"created group {GROUP} on {STREAM} (6 shards), starting at 0" in done.stderr.splitlines()


SLOW = """
import time


def process(message_id, message):
    time.sleep(0.02)
"""


def test_a_shard_deleted_while_the_consumer_works_on_another_is_recreated_like_a_lost_group(server, r, tmp_path):
    """sensor8 and sensor1 are in shards 0 and 2. While the consumer works through sensor1's
    backlog (its status line asking every shard's lag), sensor8's shard, read already, is deleted."""
    for sensor, count in (("sensor8", 5), ("sensor1", 200)):
        done = run("producer.py", sensor, "--shards", 6, "--count", count, "-q", url=server.url)
        assert done.returncode == 0, done.stderr
    other, busy = sharding.keys(STREAM, 6)[0], sharding.keys(STREAM, 6)[2]
    env = handlers(tmp_path, slow=SLOW)
    log = open(tmp_path / "c1.err", "w")
    args = ("--start-from", "0", "--count", 20, "--stats-interval", 0.1, "--handler", "slow:process")
    c1 = spawn("consumer.py", GROUP, "c1", *args, url=server.url, env=env, stderr=log)
    log.close()
    wait_for(lambda: r.exists(busy) and r.xinfo_groups(busy) and r.xinfo_groups(busy)[0]["entries-read"], what="work")
    r.delete(other)
    wait_for(lambda: "GROUP LOST" in (tmp_path / "c1.err").read_text(), timeout=15, what="GROUP LOST")
    wait_for(
        lambda: r.xinfo_groups(busy)[0]["entries-read"] == 200 and not r.xinfo_groups(busy)[0]["pending"],
        timeout=30,
        what="the backlog done",
    )
    stop(c1)
    err = (tmp_path / "c1.err").read_text()
    assert c1.returncode == 0, err
    assert "Error" not in err and "Traceback" not in err
    assert f"c1: GROUP LOST: {GROUP} on {other} no longer existed" in err
    assert r.xinfo_groups(other)[0]["name"] == GROUP.encode()  # recreated, with the shard
