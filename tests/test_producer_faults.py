"""producer.py when things go wrong under it: its connection killed or timed out mid-batch, a
WAIT longer than the socket timeout, Redis full and Ctrl-C, a cluster's master frozen or killed.

What a user sees (stderr, exit code) and what the stream holds afterwards: each reading stored
once, every ID printed as sent in the stream, `sent N` the number stored.
"""

from __future__ import annotations

import re
import signal
import time

import pytest
import redis
from conftest import STREAM, fill_up, run, sent_ids, sent_summary, spawn, told, wait_for


def by_sensor(client, sensor: str, stream: str = STREAM) -> list[str]:
    """The IDs of the sensor's entries in the stream, in order."""
    ids, start = [], "-"
    while page := client.xrange(stream, start, "+", count=10_000):
        ids += [i.decode() for i, fields in page if fields[b"sensor_id"] == sensor.encode()]
        start = "(" + page[-1][0].decode()
    return ids


class Producer:
    """producer.py in the background, its output in files."""

    def __init__(self, folder, sensor: str, *args, url: str):
        self.sensor, self.out, self.err = sensor, folder / f"{sensor}.out", folder / f"{sensor}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = spawn("producer.py", sensor, *args, url=url, stdout=out, stderr=err)

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        return self.process.wait(timeout), self.err.read_text()


@pytest.mark.slow
def test_connections_killed_and_timed_out_mid_batch_store_each_reading_once(own_server, tmp_path):
    """Two bulk producers; their connections killed five times (CLIENT KILL) and Redis frozen
    past the 5 s socket timeout (DEBUG SLEEP 6) while they send. The replies read are kept, the
    rest looked for in the stream (among the other producer's entries) before anything goes again."""
    srv = own_server("--enable-debug-command", "yes")
    admin = redis.Redis.from_url(srv.url, socket_timeout=30)  # survives the kills (SKIPME) and the sleep
    count = 150_000
    producers = [Producer(tmp_path, sensor, "--count", count, url=srv.url) for sensor in ("s1", "s2")]
    killed = 0

    def reach(at: int) -> None:
        tell = lambda: " / ".join(f"{p.sensor}: {told(p.process, p.err)}" for p in producers)  # noqa: E731
        wait_for(lambda: admin.xlen(STREAM) >= at, timeout=60, interval=0.005, what=f"{at:,} entries", tell=tell)

    for at in (30_000, 60_000, 90_000, 120_000, 150_000):
        reach(at)
        killed += admin.client_kill_filter(_type="normal", skipme=True)
    reach(180_000)
    admin.execute_command("DEBUG", "SLEEP", 6)

    for p in producers:
        code, err = p.wait()
        assert code == 0, err
        assert "Traceback" not in err
        assert err.count("lost Redis at") >= 3 and "Timeout reading" in err, err
        stored, ids = by_sensor(admin, p.sensor), sent_ids(p.out.read_text())
        assert len(stored) == count, f"{p.sensor}: {len(stored) - count} stored twice"
        assert ids == stored  # every ID printed is in the stream, in order, once
        assert sent_summary(err) == (count, p.sensor, STREAM, "")
    assert killed >= 5
    assert admin.xlen(STREAM) == 2 * count


def test_a_user_who_may_not_read_the_stream_says_what_may_be_stored_twice(own_server, tmp_path):
    """A producer allowed to XADD (and PING) only cannot look: it sends again and says so, once."""
    srv = own_server()
    admin = redis.Redis.from_url(srv.url)
    admin.execute_command(
        "ACL", "SETUSER", "producer", "on", ">pw", "resetkeys", "~app:event", "-@all", "+xadd", "+ping"
    )
    url = f"redis://producer:pw@127.0.0.1:{srv.port}/0"
    p = Producer(tmp_path, "s1", "--count", 200_000, "-q", url=url)
    for at in (40_000, 100_000):
        wait_for(lambda at=at: admin.xlen(STREAM) >= at, timeout=60, interval=0.005, what=f"{at} entries")
        admin.client_kill_filter(_type="normal", skipme=True)

    code, err = p.wait()
    assert code == 0, err
    twice = [line for line in err.splitlines() if "may have been stored twice" in line]
    assert len(twice) == 1, err
    n = int(re.match(r"up to (\d+) readings may have been stored twice: ", twice[0])[1])
    assert twice[0].endswith("this user cannot read the stream to check (XRANGE not allowed), so they were sent again")
    assert 0 < n <= 2000  # the unanswered part of the two batches in hand
    assert 200_000 <= admin.xlen(STREAM) <= 200_000 + n
    assert sent_summary(err) == (200_000, "s1", STREAM, "")


@pytest.mark.slow
def test_one_at_a_time_a_lost_reply_is_looked_for_before_it_goes_again(own_server, tmp_path):
    """--interval: Redis frozen past the socket timeout while a reading's XADD waits for its reply.
    Redis stores it when it wakes; the producer finds it there and does not add it again."""
    srv = own_server("--enable-debug-command", "yes")
    admin = redis.Redis.from_url(srv.url, socket_timeout=30)
    p = Producer(tmp_path, "s1", "--count", 40, "--interval", 0.05, url=srv.url)
    wait_for(lambda: admin.xlen(STREAM) >= 10, what="10 readings")
    admin.execute_command("DEBUG", "SLEEP", 6)  # the next XADD is written, and answered after 6 s

    code, err = p.wait()
    assert code == 0, err
    assert "Timeout reading" in err and "reconnected to" in err and "Traceback" not in err
    stored = by_sensor(admin, "s1")
    assert len(stored) == 40 and sent_ids(p.out.read_text()) == stored
    assert sent_summary(err) == (40, "s1", STREAM, "")


def test_a_wait_longer_than_the_socket_timeout_ends_with_not_confirmed(own_server):
    """No replica: WAIT 1 for 6 s outlasts the 5 s socket timeout. The producer's socket waits as
    long as WAIT may; each reading is added once, said not confirmed, and it exits 1."""
    srv = own_server()
    r = redis.Redis.from_url(srv.url)

    bulk = run("producer.py", "s1", "--count", 3, "--wait-replicas", 1, "--wait-timeout", 6000, url=srv.url, timeout=40)
    assert bulk.returncode == 1, bulk.stderr
    assert bulk.stdout == ""
    lines = bulk.stderr.splitlines()
    assert re.fullmatch(
        r"3 messages \d+-\d+\.\.\d+-\d+ stored but not confirmed by 1 replica within 6000 ms \(only 0 had them\); "
        "not counted as sent",
        lines[0],
    ), lines
    assert sent_summary(bulk.stderr) == (0, "s1", STREAM, "; 3 stored but not confirmed by 1 replicas")
    assert len(lines) == 2 and r.xlen(STREAM) == 3

    one = run("producer.py", "s2", "--wait-replicas", 1, "--wait-timeout", 5500, url=srv.url, timeout=40)
    assert one.returncode == 1, one.stderr
    assert "stored but not confirmed by 1 replica within 5500 ms (only 0 had it)" in one.stderr
    assert "lost Redis" not in one.stderr and "Timeout" not in one.stderr
    assert len(by_sensor(r, "s2")) == 1 and r.xlen(STREAM) == 4


def test_ctrl_c_while_redis_is_full_stops_at_once_and_says_it_once(own_server, tmp_path):
    """Redis at maxmemory (noeviction), room made a little at a time: batches partly stored, then
    refused again. "is full" is said once; the first Ctrl-C ends the wait with one line of what was
    stored and what was not, and the stream holds exactly what it says it stored."""
    srv = own_server("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    r = redis.Redis.from_url(srv.url)
    filler = fill_up(r)
    p = Producer(tmp_path, "s1", "--count", 100_000, "-q", url=srv.url)
    wait_for(lambda: "is full (OOM)" in p.err.read_text(), what="the producer to say Redis is full")
    for i in range(3):  # a little room, taken at once: full again
        before = r.xlen(STREAM) if r.exists(STREAM) else 0
        r.delete(*(f"ballast:{n}" for n in range(i * 4, i * 4 + 4)))
        wait_for(lambda before=before: r.exists(STREAM) and r.xlen(STREAM) > before, what="some room taken")
        time.sleep(1.2)  # refused again meanwhile, a few times
    assert p.process.poll() is None

    signalled = time.monotonic()
    p.process.send_signal(signal.SIGINT)
    code, err = p.wait(timeout=10)
    assert time.monotonic() - signalled < 3
    assert code == 1, err
    lines = err.splitlines()
    assert sum("is full" in line for line in lines) == 1, err
    assert sum("has room again" in line for line in lines) <= 1, err
    stopped = re.fullmatch(
        r"Error: stopped while Redis was full \(full for \d+\.\ds in all\): (\d+) readings stored, (\d+) not sent",
        lines[-1],
    )
    assert stopped, err
    stored, not_sent = int(stopped[1]), int(stopped[2])
    assert 0 < stored == r.xlen(STREAM) and stored + not_sent == 100_000
    assert "Traceback" not in err and filler > 12


@pytest.mark.slow
def test_a_cluster_master_killed_mid_batch_stores_each_reading_once(own_cluster, tmp_path):
    """3 masters, 1 replica each; --wait-replicas 1. The replica of the stream's master is frozen
    for a moment, so that a batch waits in WAIT with its XADDs answered and on their way to the
    replica; then the master is SIGKILLed and the replica thawed: it takes over with what it got
    of the batch, and the old master comes back as its replica. The producer looks for the batch
    on the new master before sending the rest: nothing printed is lost, nothing stored twice."""
    from redis.cluster import RedisCluster

    cluster = own_cluster()
    rc = RedisCluster.from_url(cluster.url)
    victim = cluster.owner(rc.keyslot(STREAM))
    replica = cluster.replica_of(victim)
    count = 100_000
    p = Producer(tmp_path, "s1", "--count", count, "--wait-replicas", 1, "--wait-timeout", 10_000, url=cluster.url)
    wait_for(lambda: rc.exists(STREAM) and rc.xlen(STREAM) >= 20_000, timeout=60, interval=0.005, what="20,000")
    cluster.freeze(replica)
    try:
        master = cluster.client(victim)
        wait_for(lambda: master.info("clients")["blocked_clients"] >= 1, what="the producer to wait in WAIT")
        victim.kill()
    finally:
        cluster.thaw(replica)
    wait_for(lambda: victim not in cluster.masters() and cluster.healthy(), timeout=30, what="the failover")
    victim.start()  # with its nodes.conf: a replica of the new master, so that WAIT 1 can be met again

    code, err = p.wait(timeout=150)
    assert code == 0, err
    assert "Traceback" not in err and "lost Redis at" in err and "reconnected to" in err
    rc = RedisCluster.from_url(cluster.url)
    stored, ids = by_sensor(rc, "s1"), sent_ids(p.out.read_text())
    assert len(stored) == count, f"{len(stored) - count} stored twice"
    assert ids == stored
    assert sent_summary(err) == (count, "s1", STREAM, "")


@pytest.mark.slow
def test_a_slot_moved_to_a_master_that_does_not_answer_yet_is_waited_for(own_cluster, tmp_path):
    """The stream's slot moves to another master mid-run (MOVED), and that master holds every
    client for 12 s (CLIENT PAUSE ALL): the producer's new connection to it cannot finish its
    handshake before the socket timeout. It says so, waits, and carries on there: no traceback."""
    from redis.cluster import RedisCluster

    cluster = own_cluster()
    rc = RedisCluster.from_url(cluster.url)
    slot = rc.keyslot(STREAM)
    source = cluster.owner(slot)
    target = next(node for node in cluster.masters() if node is not source)
    others = [node for node in cluster.masters() if node not in (source, target)]
    src, dst = cluster.client(source), cluster.client(target)
    src_id, dst_id = cluster.node_id(source), cluster.node_id(target)
    count = 100_000
    p = Producer(tmp_path, "s1", "--count", count, url=cluster.url)
    wait_for(lambda: rc.exists(STREAM) and rc.xlen(STREAM) >= 20_000, timeout=60, interval=0.005, what="20,000")
    # The slot moves as `redis-cli --cluster reshard` moves it; the target stops answering before
    # the source starts to answer MOVED.
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", STREAM)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    dst.execute_command("CLIENT", "PAUSE", 12_000, "ALL")
    for node in (source, *others):
        cluster.client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    code, err = p.wait(timeout=150)
    assert code == 0, err
    assert "Traceback" not in err and "AttributeError" not in err
    assert "lost Redis at" in err and "reconnected to" in err
    rc = RedisCluster.from_url(cluster.url)
    stored, ids = by_sensor(rc, "s1"), sent_ids(p.out.read_text())
    assert len(stored) == count and ids == stored
    assert sent_summary(err) == (count, "s1", STREAM, "")
    assert cluster.owner(slot) is target


@pytest.mark.parametrize("path", ["bulk", "interval"])
def test_an_xadd_answered_whose_wait_is_lost_is_not_added_again(own_server, tmp_path, path):
    """--wait-replicas 1 with a replica frozen: the XADDs are answered and WAIT waits; then the
    producer's connection is killed. The readings are in the stream: found there, not added
    again; nothing confirms them any more, so they are said not confirmed, and it exits 1."""
    master = own_server()
    replica = own_server("--replicaof", "127.0.0.1", str(master.port))
    r = redis.Redis.from_url(master.url)
    wait_for(lambda: r.info("replication")["connected_slaves"] == 1, what="the replica")
    args = ["--count", 3] if path == "bulk" else ["--count", 2, "--interval", 1]
    if path == "interval":
        p = Producer(tmp_path, "s1", *args, "--wait-replicas", 1, "--wait-timeout", 8000, url=master.url)
        wait_for(lambda: p.out.read_text(), what="the first reading, confirmed")
    replica.process.send_signal(signal.SIGSTOP)
    try:
        if path == "bulk":
            p = Producer(tmp_path, "s1", *args, "--wait-replicas", 1, "--wait-timeout", 8000, url=master.url)
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="the producer to wait in WAIT")
        stored = r.xlen(STREAM)
        assert r.client_kill_filter(_type="normal", skipme=True) == 1
        code, err = p.wait(timeout=30)
    finally:
        replica.process.send_signal(signal.SIGCONT)

    assert code == 1, err
    assert "lost Redis at" in err and "Traceback" not in err
    if path == "bulk":
        assert stored == 3 and sent_ids(p.out.read_text()) == []
        assert re.search(
            r"^3 messages \d+-\d+\.\.\d+-\d+ stored but not confirmed by 1 replica: the connection was lost before "
            r"WAIT answered; not counted as sent$",
            err,
            re.M,
        ), err
        assert sent_summary(err) == (0, "s1", STREAM, "; 3 stored but not confirmed by 1 replicas")
    else:
        assert stored == 2 and len(sent_ids(p.out.read_text())) == 1
        assert re.search(
            r"^message \d+-\d+ stored but not confirmed by 1 replica: the connection was lost before WAIT answered; "
            r"not counted as sent$",
            err,
            re.M,
        ), err
        assert sent_summary(err) == (1, "s1", STREAM, "; 1 stored but not confirmed by 1 replicas")
    assert r.xlen(STREAM) == stored  # found in the stream: not added again
