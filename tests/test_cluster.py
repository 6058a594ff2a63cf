"""A Redis Cluster, as a user meets it: the tutorial's scripts pointed at any node, sharded streams
spread over the masters, and failovers and slot moves survived with nothing lost.

Every cluster here is real servers on loopback (3 masters and their replicas), on both server
binaries; tests that kill, freeze or reshard form a cluster of their own.
"""

from __future__ import annotations

import collections
import re
import time

import pytest
import redis
from conftest import readings, run, sent_ids, spawn, stop, wait_blocked, wait_for
from redis.cluster import RedisCluster

from stream_pubsub import shards

# An entry ID is unique in its shard only: two masters can give the same ID in the same
# millisecond. A reading is (sensor, ID): a sensor's readings all go to one shard.


def sent(text: str, sensor: str) -> list[tuple[str, str]]:
    """What a producer of this sensor printed as sent."""
    return [(sensor, entry_id) for entry_id in sent_ids(text)]


def client(cluster) -> RedisCluster:
    return RedisCluster.from_url(cluster.url)


def stored(rc, keys) -> int:
    """How many entries the shards hold (0 while the cluster cannot say: a failover under way)."""
    try:
        return sum(rc.xlen(key) for key in keys if rc.exists(key))
    except redis.RedisError:
        return 0


def masters(cluster) -> list[redis.Redis]:
    return [cluster.client(node) for node in cluster.masters()]


def drained(rc, keys) -> bool:
    """Every shard has its group, which has read everything and has nothing pending."""
    for key in keys:
        groups = rc.xinfo_groups(key) if rc.exists(key) else []
        if not groups or any(g["pending"] or g["lag"] for g in groups):
            return False
    return True


def test_the_tutorial_on_a_cluster_through_any_node(cluster):
    """Two nodes of three do not hold app:event: each must still work (no MOVED in the face)."""
    ids = []
    for node in cluster.nodes[:3]:
        got = run("producer.py", "sensor1", url=node.url)
        assert got.returncode == 0, got.stderr
        ids += sent(got.stdout, "sensor1")
    assert len(ids) == 3
    got = run("consumer.py", "group1", "c1", "--start-from", "0", "--burst", url=cluster.nodes[4].url)
    assert got.returncode == 0, got.stderr
    assert readings(got.stdout) == ids
    rc = client(cluster)
    assert rc.xlen("app:event") == 3
    assert rc.xinfo_groups("app:event")[0]["pending"] == 0


def test_twelve_shards_spread_four_to_a_master_each_sensor_in_one_shard(cluster):
    rc, url = client(cluster), cluster.nodes[1].url
    keys = shards.keys("app:event", 12)
    sensors = [f"sensor{i}" for i in range(24)]
    first = run("producer.py", sensors[0], "--shards", "12", url=url)  # records the 12; the consumers use it
    assert first.returncode == 0, first.stderr
    c1 = spawn("consumer.py", "group1", "c1", "--start-from", "0", "--stats-interval", "0", url=url)
    c2 = spawn("consumer.py", "group1", "c2", "--start-from", "0", "--stats-interval", "0", url=cluster.nodes[2].url)
    wait_for(lambda: all(rc.exists(k) and rc.xinfo_groups(k) for k in keys), timeout=20, what="the groups")
    ids = sent(first.stdout, sensors[0])
    for sensor in sensors:
        got = run("producer.py", sensor, "--count", "20", "--interval", "0.001", url=url)  # no --shards: recorded
        assert got.returncode == 0, got.stderr
        ids += sent(got.stdout, sensor)
    per_master = collections.Counter(rc.get_node_from_key(key).name for key in keys)
    assert sorted(per_master.values()) == [4, 4, 4], per_master
    assert rc.get("app:event:shards") == b"12"
    for sensor in sensors:  # every reading of a sensor in the one shard it routes to
        home = keys[shards.route(sensor, 12)]
        for key in keys:
            found = [f for _, f in rc.xrange(key) if f[b"sensor_id"] == sensor.encode()] if rc.exists(key) else []
            assert len(found) == (20 + (sensor == sensors[0]) if key == home else 0), (sensor, key)
    wait_for(lambda: drained(rc, keys), timeout=30, what="both consumers to process every shard")
    (out1, err1), (out2, err2) = stop(c1), stop(c2)
    done = readings(out1) + readings(out2)
    assert sorted(done) == sorted(ids) and len(set(done)) == len(ids) == 481  # each once
    assert readings(out1) and readings(out2), (len(readings(out1)), len(readings(out2)))  # the work was shared
    # the two create the group on the 12 shards between them, each saying on how many it did
    made = re.findall(r"created group group1 on app:event \((\d+) shards\), starting at 0", err1 + err2)
    assert sum(map(int, made)) == 12, err1 + err2
    assert "Traceback" not in err1 + err2


def test_a_different_number_of_shards_is_refused_and_nothing_written(cluster):
    rc, url = client(cluster), cluster.url
    assert run("producer.py", "sensor1", "--shards", "12", url=url).returncode == 0
    before = {key: rc.xlen(key) for key in shards.keys("app:event", 12)}
    for script, args in (("producer.py", ["sensor1"]), ("consumer.py", ["group1", "c1", "--burst"])):
        got = run(script, *args, "--shards", "4", url=url)
        assert got.returncode == 1
        assert got.stderr.strip().splitlines() == [
            "Error: app:event at " + cluster.url.split("//")[1].split("/")[0] + " has 12 shards (recorded in "
            "app:event:shards), not 4: changing the number of shards of a stream is not offered (it would move "
            "sensors between shards); leave out --shards to use 12"
        ]
    assert {key: rc.xlen(key) for key in shards.keys("app:event", 12)} == before
    assert not any(rc.xinfo_groups(key) for key in shards.keys("app:event", 12) if rc.exists(key))  # no group made
    assert rc.get("app:event:shards") == b"12"
    # A stream whose single key holds entries is not sharded afterwards either.
    rc.xadd("plain", {"sensor_id": "s", "temp": "1", "humidity": "1"})
    got = run("producer.py", "sensor1", "--stream", "plain", "--shards", "3", url=url)
    assert got.returncode == 1 and "already holds entries as 1 stream, not 3 shards" in got.stderr
    assert rc.get("plain:shards") is None and rc.xlen("plain") == 1


def test_poison_is_dead_lettered_in_the_slot_of_its_shard(cluster):
    rc, url = client(cluster), cluster.url
    assert run("producer.py", "sensor1", "--field", "temp=hot", url=url).returncode == 0
    poison = run("producer.py", "sensor2", "--shards", "6", "--stream", "six", "--field", "humidity=wet", url=url)
    assert poison.returncode == 0, poison.stderr
    home = shards.route("sensor2", 6)
    for stream, key, dlq in (
        ("app:event", "app:event", "{app:event}:dlq"),
        ("six", shards.keys("six", 6)[home], shards.keys("six:dlq", 6)[home]),
    ):
        got = run("consumer.py", "group1", "c1", "--stream", stream, "--start-from", "0", "--burst", url=url)
        assert got.returncode == 0, got.stderr
        assert f"to {dlq}: invalid reading:" in got.stderr
        assert rc.keyslot(dlq) == rc.keyslot(key)
        ((_, fields),) = rc.xrange(dlq)
        assert fields[b"dlq.stream"] == key.encode()
        assert rc.xinfo_groups(key)[0]["pending"] == 0


def test_a_dead_letter_key_in_another_slot_is_refused_before_anything_is_read(cluster):
    rc, url = client(cluster), cluster.url
    assert run("producer.py", "sensor1", url=url).returncode == 0
    got = run("consumer.py", "group1", "c1", "--start-from", "0", "--burst", "--dead-letter", "failed", url=url)
    assert got.returncode == 1
    assert got.stderr.startswith("Error: the dead-letter stream failed cannot share the slot of app:event")
    assert "give --dead-letter {app:event}:dlq" in got.stderr and "Traceback" not in got.stderr
    assert rc.xinfo_groups("app:event") == []  # nothing was read, not even a group created


class Running:
    """A script in the background whose output goes to files (a full pipe would block it)."""

    def __init__(self, folder, name: str, script: str, *args, url: str):
        self.sensor = args[0]  # a producer's SENSOR
        self.out, self.err = folder / f"{name}.out", folder / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = spawn(script, *args, url=url, stdout=out, stderr=err)

    def stop(self) -> tuple[str, str]:
        stop(self.process)
        return self.out.read_text(), self.err.read_text()


def readings_running(folder, url: str, sensors, *extra):
    args = ["--shards", "12", "--count", "0", "--interval", "0.01", *extra]
    return [Running(folder, s, "producer.py", s, *args, url=url) for s in sensors]


def consumers_running(folder, url: str, names, *extra):
    return {
        n: Running(
            folder,
            n,
            "consumer.py",
            "group1",
            n,
            "--start-from",
            "0",
            "--stats-interval",
            "0",
            "--claim-idle",
            "3000",
            *extra,
            url=url,
        )
        for n in names
    }


def finish(rc, producers, consumers, keys):
    """Stop the producers, let the consumers drain every shard, stop them: (sent, processed, errors)."""
    outs = [p.stop() for p in producers]
    ids = [i for p, (out, _) in zip(producers, outs) for i in sent(out, p.sensor)]
    try:
        wait_for(lambda: drained(rc, [k for k in keys if rc.exists(k)]), timeout=60, what="the consumers to drain")
    except AssertionError:
        state = {k: [(g["name"], g["pending"], g["lag"]) for g in rc.xinfo_groups(k)] for k in keys if rc.exists(k)}
        state["pending"] = [rc.xpending_range(k, "group1", "-", "+", 10) for k in keys if rc.exists(k)]
        ends = {name: c.stop() for name, c in consumers.items()}
        raise AssertionError(f"not drained: {state}; consumers said: {[e[-1500:] for _, e in ends.values()]}")
    ends = {name: c.stop() for name, c in consumers.items()}
    done = [i for out, _ in ends.values() for i in readings(out)]
    errors = "".join(err for _, err in outs) + "".join(err for _, err in ends.values())
    codes = {name: c.process.returncode for name, c in consumers.items()}
    return ids, done, errors, codes, [p.process.returncode for p in producers]


@pytest.mark.slow
def test_a_master_killed_mid_run_loses_nothing_confirmed_by_a_replica(own_cluster, tmp_path):
    cluster = own_cluster()
    rc, url = client(cluster), cluster.nodes[3].url  # a replica's URL: it works as any other node
    keys = shards.keys("app:event", 12)
    consumers = consumers_running(tmp_path, url, ["c1", "c2"], "--shards", "12")
    wait_for(lambda: all(rc.exists(k) for k in keys), timeout=20, what="the groups")
    producers = readings_running(tmp_path, url, [f"sensor{i}" for i in range(6)], "--wait-replicas", "1")
    wait_for(lambda: stored(rc, keys) >= 300, timeout=20, what="readings flowing")
    victim = cluster.owner(rc.keyslot(keys[0]))
    victim.kill()  # SIGKILL: its replica takes over after the node timeout
    wait_for(lambda: victim not in cluster.masters() and cluster.healthy(), timeout=20, what="the failover")
    after = stored(rc, keys)
    wait_for(lambda: stored(rc, keys) >= after + 300, timeout=20, what="readings flowing after the failover")
    ids, done, errors, codes, _ = finish(rc, producers, consumers, keys)
    lost = set(ids) - set(done)
    assert len(ids) > 200 and not lost, f"{len(lost)} of {len(ids)} readings printed as sent were never processed"
    assert "Traceback" not in errors and "GROUP LOST" not in errors
    assert "lost Redis at" in errors and "reconnected to" in errors
    assert codes == {"c1": 0, "c2": 0}
    print(f"sent {len(ids)}, processed {len(done)}, duplicates {len(done) - len(set(done))}, lost 0")


@pytest.mark.slow
def test_a_manual_failover_loses_nothing(own_cluster, tmp_path):
    cluster = own_cluster()
    rc, url = client(cluster), cluster.url
    keys = shards.keys("app:event", 12)
    consumers = consumers_running(tmp_path, url, ["c1"], "--shards", "12")
    wait_for(lambda: all(rc.exists(k) for k in keys), timeout=20, what="the groups")
    producers = readings_running(tmp_path, url, ["sensor1", "sensor2", "sensor3"])
    wait_for(lambda: stored(rc, keys) >= 150, timeout=20, what="readings flowing")
    for key in keys[:5:4]:  # two of the three masters hand over to their replicas
        cluster.failover(cluster.replica_of(cluster.owner(rc.keyslot(key))))
    after = stored(rc, keys)
    wait_for(lambda: stored(rc, keys) >= after + 150, timeout=20, what="readings flowing after the failovers")
    ids, done, errors, codes, producer_codes = finish(rc, producers, consumers, keys)
    assert ids and set(ids) <= set(done)
    assert "Traceback" not in errors and "GROUP LOST" not in errors
    assert codes == {"c1": 0} and producer_codes == [0, 0, 0]


def test_a_frozen_replica_makes_wait_replicas_fail_as_it_should(own_cluster):
    cluster = own_cluster()
    rc = client(cluster)
    master = cluster.owner(rc.keyslot("app:event"))
    got = run("producer.py", "sensor1", "--count", "2", "--wait-replicas", "1", url=cluster.url)
    assert got.returncode == 0 and len(sent(got.stdout, "sensor1")) == 2, got.stderr
    replica = cluster.replica_of(master)
    cluster.freeze(replica)
    try:
        got = run(
            "producer.py",
            "sensor1",
            "--count",
            "3",
            "--interval",
            "0.01",
            "--wait-replicas",
            "1",
            "--wait-timeout",
            "200",
            url=cluster.url,
        )
        bulk = run(
            "producer.py", "sensor2", "--count", "500", "--wait-replicas", "1", "--wait-timeout", "200", url=cluster.url
        )
    finally:
        cluster.thaw(replica)
    assert got.returncode == 1 and sent(got.stdout, "sensor1") == []
    lines = got.stderr.strip().splitlines()
    assert sum("stored but not confirmed by 1 replica within 200 ms (only 0 had it)" in line for line in lines) == 3
    assert lines[-1].endswith("; 3 stored but not confirmed by 1 replicas")
    assert bulk.returncode == 1 and sent(bulk.stdout, "sensor2") == []
    assert "500 messages" in bulk.stderr and "not confirmed by 1 replica" in bulk.stderr
    assert rc.xlen("app:event") == 2 + 3 + 500  # stored all the same: WAIT does not undo a write


@pytest.mark.slow
@pytest.mark.parametrize("how", ["setslot", "migrateslots"])
@pytest.mark.parametrize("n", [1, 12])
def test_a_slot_moved_under_blocked_consumers_loses_nothing(own_cluster, server_binary, how, n, tmp_path):
    if how == "migrateslots" and "valkey" not in server_binary:
        pytest.skip("CLUSTER MIGRATESLOTS is Valkey's (9.0+)")
    cluster = own_cluster(replicas=0)
    rc, url = client(cluster), cluster.url
    keys = shards.keys("app:event", n)
    args = ["--shards", str(n)] if n > 1 else []
    consumers = consumers_running(tmp_path, url, ["c1", "c2"], *args)
    wait_for(lambda: all(rc.exists(k) for k in keys), timeout=20, what="the groups")
    first = run("producer.py", "sensor1", *args, "--count", "20", url=url)
    wait_for(lambda: drained(rc, [k for k in keys if rc.exists(k)]), what="the 20 readings processed")
    # both consumers now blocked, waiting: on one key in XREADGROUP, on 12 shards in an XREAD per shard
    wait_blocked(*masters(cluster), readers=2 * n)
    slot = rc.keyslot(keys[shards.route("sensor1", n)])
    source = cluster.owner(slot)
    target = next(node for node in cluster.masters() if node is not source)
    if how == "setslot":
        cluster.migrate_slot(slot, target)
    else:
        cluster.client(source).execute_command(
            "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot, "NODE", cluster.node_id(target)
        )
        wait_for(lambda: cluster.owner(slot) is target, timeout=20, what="the slot to move")
    producers = [
        Running(tmp_path, "p", "producer.py", "sensor1", *args, "--count", "30", "--interval", "0.02", url=url)
    ]
    assert producers[0].process.wait(30) == 0, producers[0].err.read_text()  # all 30 sent, then finish
    ids, done, errors, codes, _ = finish(rc, producers, consumers, keys)
    ids = sent(first.stdout, "sensor1") + ids
    assert len(ids) == 50 and set(ids) <= set(done), f"lost {len(set(ids) - set(done))}"
    assert "GROUP LOST" not in errors and "Traceback" not in errors
    assert codes == {"c1": 0, "c2": 0}
    assert cluster.owner(slot) is target


def test_an_idle_consumer_of_twelve_shards_waits_without_polling(cluster):
    import psutil

    rc, url = client(cluster), cluster.url
    assert run("producer.py", "sensor0", "--shards", "12", url=url).returncode == 0
    consumer = spawn("consumer.py", "group1", "c1", "--stats-interval", "0", url=url)
    wait_for(
        lambda: all(rc.exists(k) and rc.xinfo_groups(k) for k in shards.keys("app:event", 12)),
        timeout=20,
        what="the groups",
    )
    wait_blocked(*masters(cluster), readers=12)  # an XREAD BLOCK per shard: waiting, not polling
    watch = psutil.Process(consumer.pid)
    before, started = watch.cpu_times(), time.monotonic()
    time.sleep(4)
    after = watch.cpu_times()
    share = (after.user + after.system - before.user - before.system) / (time.monotonic() - started)
    # And a reading on any shard reaches it at once, whichever shard it is.
    delays = []
    for key in shards.keys("app:event", 12)[::4]:  # one shard on each master
        start = time.monotonic()
        new_id = rc.xadd(key, {"sensor_id": "s", "temp": "0.5", "humidity": "0.5"})
        wait_for(
            lambda k=key, i=new_id: (
                rc.xinfo_groups(k)[0]["last-delivered-id"] == i and rc.xinfo_groups(k)[0]["pending"] == 0
            ),
            timeout=5,
            interval=0.001,
            what="the reading",
        )
        delays.append(time.monotonic() - start)
    out, err = stop(consumer)
    assert share < 0.05, f"an idle consumer used {share:.1%} of a core"
    assert len(readings(out)) == 3, err
    assert max(delays) < 0.5, delays  # a few ms here; the bound leaves room for a busy machine
    print(f"idle CPU {share:.2%}; delays {[round(d * 1000, 1) for d in delays]} ms")


def test_claiming_own_pending_and_a_lost_group_on_a_sharded_cluster_stream(cluster, tmp_path):
    """The single-node promises, on 6 shards of a cluster: a failing consumer's entries are
    claimed by another, a restarted one re-reads its own pending entries, and FLUSHALL on every
    master is a GROUP LOST that the running consumer recovers from."""
    rc, url = client(cluster), cluster.url
    keys = shards.keys("app:event", 6)
    ids = []
    for sensor in ("sensor1", "sensor2", "sensor3", "sensor4"):
        got = run("producer.py", sensor, "--shards", "6", "--count", "10", url=url)
        ids += sent(got.stdout, sensor)
    failing = Running(
        tmp_path,
        "failing",
        "consumer.py",
        "group1",
        "c1",
        "--start-from",
        "0",
        "--fail-rate",
        "1",
        "--claim-idle",
        "100000",
        "--stats-interval",
        "0",
        url=url,
    )

    def held():
        try:
            return sum(len(rc.xpending_range(k, "group1", "-", "+", 100, consumername="c1")) for k in keys)
        except redis.ResponseError:  # NOGROUP: not every shard has its group yet
            return 0

    wait_for(lambda: held() == 40, timeout=15, what="all 40 to fail and wait with c1")
    _, err = failing.stop()
    assert "failed" in err and held() == 40
    again = run("consumer.py", "group1", "c1", "--burst", "--claim-idle", "100000", url=url)  # c1 comes back, healed
    assert again.returncode == 0, again.stderr
    assert sorted(readings(again.stdout)) == sorted(ids)  # its own pending entries, re-read (ID 0)
    more = sent(run("producer.py", "sensor5", "--count", "5", url=url).stdout, "sensor5")
    taker = Running(tmp_path, "c2", "consumer.py", "group1", "c2", "--stats-interval", "0", url=url)
    wait_for(lambda: drained(rc, [k for k in keys if rc.exists(k)]), timeout=15, what="c2 to read the 5")
    for node in cluster.masters():
        cluster.client(node).flushall()
    wait_for(lambda: rc.get("app:event:shards"), timeout=10, what="the consumer to record the 6 shards again")
    after = sent(run("producer.py", "sensor6", "--count", "5", url=url).stdout, "sensor6")
    wait_for(lambda: drained(rc, [k for k in keys if rc.exists(k)]), timeout=15, what="the group recreated")
    out, err = taker.stop()
    assert sorted(readings(out)) == sorted(more + after), err
    assert "GROUP LOST" in err and "Traceback" not in err
    assert rc.get("app:event:shards") == b"6"  # FLUSHALL took the record too: the consumer wrote it again


def test_a_long_block_read_on_a_cluster_is_not_a_timeout(cluster, tmp_path):
    """BLOCK 7000 against redis-py's 5 s socket timeout: the consumer waits, quietly, and reads."""
    url = cluster.url
    consumer = Running(
        tmp_path, "c1", "consumer.py", "group1", "c1", "--block", "7000", "--stats-interval", "0", url=url
    )
    time.sleep(8.5)  # longer than the default socket timeout and one BLOCK
    ids = sent(run("producer.py", "sensor1", "--count", "3", url=url).stdout, "sensor1")
    rc = client(cluster)
    wait_for(lambda: drained(rc, ["app:event"]), timeout=10, what="the readings")
    out, err = consumer.stop()
    assert readings(out) == ids
    assert "lost Redis" not in err and "Traceback" not in err and "Timeout" not in err, err
