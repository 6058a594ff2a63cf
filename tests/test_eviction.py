"""A Redis that evicts keys when full (maxmemory-policy allkeys-*, or volatile-* once the stream has a
TTL) can delete the stream whole, with its groups and pending entries: the scripts say so loudly at
start, and a consumer whose group vanished says eviction was the cause when Redis evicted keys."""

from __future__ import annotations

import redis
from conftest import run, spawn, stop, wait_for

STREAM, GROUP = "app:event", "group1"
WARNING = (
    "WARNING: Redis evicts keys when it is full (maxmemory-policy {policy}): the stream, its groups and pending "
    "entries can vanish without a word. Set maxmemory-policy noeviction for streams (full, Redis refuses new "
    "entries instead, and the producer waits)"
)


def test_the_consumer_warns_at_start_when_redis_may_evict_the_stream(own_server):
    srv = own_server("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")

    done = run("consumer.py", GROUP, "c1", "--burst", url=srv.url)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == WARNING.format(policy="allkeys-lru")


def test_volatile_policies_warn_only_once_the_stream_has_a_ttl(own_server):
    srv = own_server("--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru")
    r = redis.Redis.from_url(srv.url)

    quiet = run("consumer.py", GROUP, "c1", "--burst", url=srv.url)
    assert quiet.returncode == 0 and "WARNING" not in quiet.stderr, quiet.stderr
    r.expire(STREAM, 3600)  # (a TTL on a stream: volatile-* may now evict it)
    loud = run("consumer.py", GROUP, "c1", "--burst", url=srv.url)
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.splitlines()[0] == WARNING.format(policy=f"volatile-lru, and {STREAM} has a TTL")


def test_no_warning_without_a_memory_limit(own_server):
    srv = own_server("--maxmemory-policy", "allkeys-lru")  # no maxmemory: nothing is ever evicted

    done = run("consumer.py", GROUP, "c1", "--burst", url=srv.url)

    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr


def test_a_group_lost_to_eviction_is_said_to_be_eviction(own_server, tmp_path):
    srv = own_server("--maxmemory", "8mb", "--maxmemory-policy", "allkeys-random")
    r = redis.Redis.from_url(srv.url)
    log = open(tmp_path / "c1.err", "w")
    c1 = spawn("consumer.py", GROUP, "c1", "--block", 200, "--stats-interval", 0, url=srv.url, stderr=log)
    log.close()
    wait_for(lambda: r.exists(STREAM) and r.xinfo_groups(STREAM), what="the group")
    filler = 0
    while r.exists(STREAM) and filler < 20_000:  # fill Redis until its eviction takes the stream
        r.set(f"ballast:{filler}", "x" * 4096)
        filler += 1
    assert not r.exists(STREAM), "the stream was never evicted"
    wait_for(lambda: "GROUP LOST" in (tmp_path / "c1.err").read_text(), timeout=15, what="GROUP LOST")
    stop(c1)
    err = (tmp_path / "c1.err").read_text()
    assert c1.returncode == 0 and "Traceback" not in err, err
    lost = next(line for line in err.splitlines() if "GROUP LOST" in line)
    assert lost.startswith(f"c1: GROUP LOST: {GROUP} on {STREAM} no longer existed (Redis evicted ")
    assert "keys meanwhile); recreated it" in lost
    assert err.splitlines()[0] == WARNING.format(policy="allkeys-random")


def test_the_producer_warns_too(own_server):
    srv = own_server("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-random")

    done = run("producer.py", "sensor1", url=srv.url)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [WARNING.format(policy="allkeys-random")]
    assert done.stdout.startswith("message ")  # warned, and sent all the same
