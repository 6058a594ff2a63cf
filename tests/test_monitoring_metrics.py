"""admin.py metrics: the exposition text (parsed with prometheus_client's own parser) holds the
numbers Redis holds, on one server and on a cluster (each shard read from its own node), printed
once or served on /metrics and read afresh at every scrape; it never writes to Redis; a bad
--serve address is one line and exit 2 before Redis is even asked.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.error
import urllib.request

import pytest
import redis
from conftest import ROOT, run, spawn, stop, wait_for
from prometheus_client.parser import text_string_to_metric_families
from redis.cluster import RedisCluster
from test_admin import readme_state

from stream_pubsub import shards
from stream_pubsub.dead_letters import dead_letter
from stream_pubsub.local_server import free_port

S = "app:event"


def metrics(*args, url) -> dict:
    """{(sample name, frozenset of labels): value} of `admin.py metrics`; it must succeed quietly."""
    got = run("admin.py", "metrics", *args, url=url)
    assert got.returncode == 0 and got.stderr == "", got.stderr
    return parse(got.stdout)


def parse(text: str) -> dict:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels):
    return found.get((name, frozenset(labels.items())))


def names(found: dict) -> set[str]:
    return {name for name, _ in found}


def writes(db) -> int:
    """Writes since the last save, on every master: admin.py metrics must add none."""
    if isinstance(db, RedisCluster):
        nodes = db.info("persistence", target_nodes=RedisCluster.PRIMARIES).values()
    else:
        nodes = [db.info("persistence")]
    return sum(node["rdb_changes_since_last_save"] for node in nodes)


def ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


# -- one stream on one server ------------------------------------------------------------------------
def test_the_numbers_redis_holds(server, r):
    ids = [r.xadd(S, {"sensor_id": "s1", "temp": str(20 + i)}) for i in range(10)]
    r.xgroup_create(S, "g", "0")
    r.xreadgroup("g", "c1", {S: ">"}, count=4)  # 4 pending with c1
    r.xack(S, "g", ids[1])
    r.xreadgroup("g", "c2", {S: ">"}, count=3)  # 3 pending with c2
    r.xclaim(S, "g", "c2", 0, [ids[0]])  # ids[0] delivered twice, now c2's
    r.xclaim(S, "g", "c2", 0, [ids[0]])  # three times
    r.xgroup_create(S, "late", "$")  # reads from now on: lag 0
    # ids[2] dead-lettered (and acknowledged): c1 holds ids[3], c2 ids[0] and ids[4] to ids[6]
    dead_letter(
        r, dlq=f"{S}:dlq", stream=S, group="g", consumer="c1", entry_id=ids[2], fields={}, deliveries=5, error=""
    )
    before = writes(r)

    found = metrics(url=server.url)

    assert writes(r) == before  # it only read
    stream, (g, late) = r.xinfo_stream(S), sorted(r.xinfo_groups(S), key=lambda x: x["name"])
    base = {"db": "db0", "stream": S}
    assert value(found, "redis_stream_length", **base) == r.xlen(S) == 10
    assert value(found, "redis_stream_entries_added_total", **base) == stream["entries-added"] == 10
    assert value(found, "redis_stream_groups", **base) == 2
    assert value(found, "redis_stream_first_entry_id", **base) == ms(ids[0])
    assert value(found, "redis_stream_last_entry_id", **base) == ms(ids[-1])
    assert value(found, "redis_stream_last_generated_id", **base) == ms(stream["last-generated-id"])
    assert value(found, "redis_stream_radix_tree_keys", **base) == stream["radix-tree-keys"]
    assert value(found, "stream_pubsub_stream_shards", **base) == 1
    group = {**base, "group": "g"}
    assert value(found, "redis_stream_group_messages_pending", **group) == g["pending"] == 5
    assert value(found, "redis_stream_group_lag", **group) == g["lag"] == 3
    assert value(found, "redis_stream_group_entries_read", **group) == g["entries-read"] == 7
    assert value(found, "redis_stream_group_consumers", **group) == 2
    assert value(found, "redis_stream_group_last_delivered_id", **group) == ms(ids[6])
    assert value(found, "redis_stream_group_lag", **base, group="late") == late["lag"] == 0
    assert value(found, "stream_pubsub_group_pending_max_deliveries", **group) == 3
    assert value(found, "stream_pubsub_group_trimmed_unread", **group) == 0
    age = value(found, "stream_pubsub_group_oldest_pending_age_seconds", **group)
    now_ms = r.time()[0] * 1000
    assert now_ms / 1000 - ms(ids[0]) / 1000 - 5 <= age <= now_ms / 1000 - ms(ids[0]) / 1000 + 1
    assert 0 <= value(found, "stream_pubsub_group_oldest_pending_idle_seconds", **group) < 30
    assert value(found, "stream_pubsub_group_oldest_pending_idle_seconds", **base, group="late") is None  # none
    consumers = {c["name"].decode(): c for c in r.xinfo_consumers(S, "g")}
    for name, held in (("c1", 1), ("c2", 4)):
        assert value(found, "redis_stream_group_consumer_messages_pending", **group, consumer=name) == held
        assert consumers[name]["pending"] == held
        assert 0 <= value(found, "redis_stream_group_consumer_idle_seconds", **group, consumer=name) < 30
        inactive = value(found, "stream_pubsub_group_consumer_inactive_seconds", **group, consumer=name)
        assert (inactive is None) == ("inactive" not in consumers[name])  # Redis 7.2+ and Valkey only
    assert value(found, "stream_pubsub_dead_letters", **base) == r.xlen(f"{S}:dlq") == 1
    assert 0 <= value(found, "stream_pubsub_dead_letters_newest_age_seconds", **base) < 30
    key = {**base, "key": S, "dead_letter": f"{S}:dlq", "node": f"127.0.0.1:{server.port}"}
    assert value(found, "stream_pubsub_stream_key_info", **key) == 1
    assert value(found, "redis_up") == 1
    assert not any(name == "shard" for _, labels in found for name, _ in labels)  # not sharded: no shard label


def test_a_group_behind_a_trimmed_stream_shows_what_it_lost(server, r):
    for i in range(50):
        r.xadd(S, {"n": i})
    r.xgroup_create(S, "slow", "0")
    r.xreadgroup("slow", "c1", {S: ">"}, count=10)
    r.xack(S, "slow", *[e[0] for e in r.xrange(S, count=10)])
    r.xgroup_create(S, "never", "0")
    r.xtrim(S, maxlen=15, approximate=False)  # 35 removed: slow had read 10, never none

    found = metrics(url=server.url)

    group = {"db": "db0", "stream": S}
    assert value(found, "stream_pubsub_group_trimmed_unread", **group, group="slow") == 25
    assert value(found, "stream_pubsub_group_trimmed_unread", **group, group="never") == 35
    info = run("admin.py", "info", "--json", url=server.url)  # the same number as admin.py info
    assert '"trimmed_unread": 25' in info.stdout and '"trimmed_unread": 35' in info.stdout
    r.xreadgroup("slow", "c1", {S: ">"}, count=100)  # it reads on, past the gap: nothing more is lost
    found = metrics(url=server.url)
    assert value(found, "stream_pubsub_group_trimmed_unread", **group, group="slow") == 0


def test_the_readme_example_says_what_admin_py_info_says(server, r):
    """The README's example state: the metrics and `admin.py info --json` tell the same numbers."""
    readme_state(r)
    found = metrics(url=server.url)
    info = run("admin.py", "info", "--json", url=server.url)
    doc = json.loads(info.stdout)
    base = {"db": "db0", "stream": S}
    assert value(found, "redis_stream_length", **base) == doc["stream"]["length"] == 8
    assert value(found, "stream_pubsub_dead_letters", **base) == doc["dead_letters"]["length"] == 1
    for group in doc["groups"]:
        labels = {**base, "group": group["name"]}
        assert value(found, "redis_stream_group_lag", **labels) == group["lag"]
        assert value(found, "redis_stream_group_messages_pending", **labels) == group["pending"]
        assert value(found, "stream_pubsub_group_trimmed_unread", **labels) == group["trimmed_unread"]
        assert value(found, "redis_stream_group_consumers", **labels) == len(group["consumers"])
        for consumer in group["consumers"]:
            who = {**labels, "consumer": consumer["name"]}
            assert value(found, "redis_stream_group_consumer_messages_pending", **who) == consumer["pending"]
    assert [g["trimmed_unread"] for g in doc["groups"]] == [2, 0]  # audit lost 2, group1 nothing


def readme_metrics() -> list[str]:
    """The lines the README's "Watch it from Prometheus" shows `admin.py metrics` print."""
    readme = (ROOT / "README.md").read_text()
    chapter = readme.split("\n## Watch it from Prometheus\n")[1].split("\n## ")[0]
    (block,) = re.findall(r"```\n\$ python admin\.py metrics \| grep -v '\^#'\n(.*?)```", chapter, re.S)
    return block.splitlines()


def as_shown(line: str) -> str:
    """A line with what changes from run to run made uniform: the times (IDs, ages, idle times) and
    the server's port; every other number (lengths, lags, counts) stays as it is."""
    line = re.sub(r'node="[^"]*"', 'node="HOST:PORT"', line)
    if re.match(r"\w+(_id|_seconds)\{", line):
        line = re.sub(r" \S+$", " N", line)
    return line


def test_the_readme_shows_what_admin_py_metrics_prints(server, r):
    readme_state(r)
    got = run("admin.py", "metrics", url=server.url)
    assert got.returncode == 0, got.stderr
    printed = [line for line in got.stdout.splitlines() if not line.startswith("#")]
    inactive = [line for line in printed if "_inactive_seconds{" in line]  # Valkey and Redis 7.2+; shown: 7.0
    assert len(inactive) == (2 if "inactive" in r.xinfo_consumers(S, "group1")[0] else 0)
    shown = readme_metrics()
    assert [as_shown(line) for line in printed if line not in inactive] == [as_shown(line) for line in shown]
    assert as_shown('redis_stream_group_lag{db="db0",group="audit",stream="app:event"} 8.0') in map(as_shown, shown)


def test_several_streams_and_patterns(server, r):
    r.xadd("app:event", {"n": 1})
    r.xadd("app:event:dlq", {"n": 1})  # the dead letters of app:event, not a stream of their own
    r.set(shards.record_key("app:alerts"), 3)
    for i, key in enumerate(shards.keys("app:alerts", 3)):
        r.xadd(key, {"n": i})
    r.xadd("other", {"n": 1})
    r.xadd("other", {"n": 2})
    r.set("app:notastream", "x")  # SCAN ... TYPE stream passes it by

    found = metrics("--stream", "app:*", "--stream", "other", url=server.url)

    streams = {dict(labels)["stream"] for name, labels in found if name == "redis_stream_length"}
    assert streams == {"app:event", "app:alerts", "other"}
    assert value(found, "stream_pubsub_dead_letters", db="db0", stream="app:event") == 1
    assert value(found, "redis_stream_length", db="db0", stream="other") == 2
    assert value(found, "stream_pubsub_stream_shards", db="db0", stream="app:alerts") == 3
    for i in range(3):
        assert value(found, "redis_stream_length", db="db0", stream="app:alerts", shard=str(i)) == 1


# -- sharded, on one server and on a cluster -------------------------------------------------------
def test_a_sharded_stream_shard_by_shard_each_read_from_its_node(place):
    """12 shards, 10 groups each: the issue's size. Shard i holds i + 2 entries; every group's c1
    read one of them (pending), group g0's c2 one more; every third shard has a dead letter."""
    n, db = 12, place.db
    db.set(shards.record_key(S), n)
    keys, dlqs = shards.keys(S, n), [shards.companion(f"{S}:dlq", i, n) for i in range(n)]
    for i, key in enumerate(keys):
        for j in range(i + 2):
            db.xadd(key, {"sensor_id": f"sensor{i}", "n": j})
        for g in range(10):
            db.xgroup_create(key, f"g{g}", "0")
            db.xreadgroup(f"g{g}", "c1", {key: ">"}, count=1)
        db.xreadgroup("g0", "c2", {key: ">"}, count=1)
        if i % 3 == 0:
            db.xadd(dlqs[i], {"dlq.reason": "bad"})
    before = writes(db)

    found = metrics(url=place.url)

    assert writes(db) == before
    assert value(found, "stream_pubsub_stream_shards", db="db0", stream=S) == n
    nodes = set()
    for i, key in enumerate(keys):
        shard = {"db": "db0", "stream": S, "shard": str(i)}
        node = place.node_of(key)
        nodes.add(node)
        assert value(found, "stream_pubsub_stream_key_info", **shard, key=key, dead_letter=dlqs[i], node=node) == 1
        assert value(found, "redis_stream_length", **shard) == db.xlen(key) == i + 2
        assert value(found, "stream_pubsub_dead_letters", **shard) == (1 if i % 3 == 0 else 0)
        for g in db.xinfo_groups(key):
            group = {**shard, "group": g["name"].decode()}
            assert value(found, "redis_stream_group_lag", **group) == g["lag"]
            assert value(found, "redis_stream_group_messages_pending", **group) == g["pending"]
        assert value(found, "redis_stream_group_consumer_messages_pending", **shard, group="g0", consumer="c2") == 1
    assert len(nodes) == (3 if place.cluster else 1)
    lags = [v for (name, _), v in found.items() if name == "redis_stream_group_lag"]
    assert (
        len(lags) == 120 and sum(lags) == sum(i + 2 for i in range(n)) * 10 - 120 - 12
    )  # c1 read one in each group, c2 one in g0


# -- mistakes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("9103", "is not an address to listen on: give HOST:PORT, like :9103"),
        ("127.0.0.1:70000", "is not an address to listen on"),
        ("taken", "the port is taken (something else listens there)"),
    ],
)
def test_an_address_that_is_malformed_or_taken_is_one_line_and_exit_2_before_redis(address, says):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if address == "taken":
            address = f"127.0.0.1:{taken.getsockname()[1]}"
        # nothing answers at this Redis URL: the address is checked first (else: exit 1, "cannot reach")
        got = run("admin.py", "metrics", "--serve", address, url=f"redis://127.0.0.1:{free_port()}/0")
    assert got.returncode == 2, got.stderr
    assert got.stderr.count("\n") == 1 and says in got.stderr, got.stderr
    assert got.stdout == ""


def test_redis_down_a_key_that_is_not_a_stream_and_a_misplaced_dead_letter_option(server, r):
    got = run("admin.py", "metrics", url=f"redis://127.0.0.1:{free_port()}/0")
    assert got.returncode == 1 and got.stderr.startswith("Error: cannot reach Redis at 127.0.0.1:")
    assert got.stderr.count("\n") == 1 and got.stdout == ""
    r.set(S, "x")
    got = run("admin.py", "metrics", url=server.url)
    assert got.returncode == 1 and got.stdout == ""
    wrong = "holds another type of value, not a stream (WRONGTYPE); left untouched"
    assert got.stderr == f"Error: the key '{S}' at 127.0.0.1:{server.port} {wrong}\n"
    assert r.get(S) == b"x"
    got = run("admin.py", "metrics", "--stream", "app:*", "--dead-letter", "dead", url=server.url)
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "--dead-letter" in got.stderr


# -- served -----------------------------------------------------------------------------------------
def scrape(port: int, path: str = "/metrics") -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return parse(response.read().decode())


def try_scrape(port: int) -> dict | None:
    try:
        return scrape(port)
    except OSError:
        return None


def test_served_it_reads_redis_afresh_at_every_scrape_and_survives_redis_going_away(own_server):
    server = own_server()
    r = redis.Redis.from_url(server.url)
    r.xadd(S, {"n": 1})
    port = free_port()
    exporter = spawn("admin.py", "metrics", "--serve", f"127.0.0.1:{port}", url=server.url)
    found = wait_for(lambda: try_scrape(port), timeout=20, what="the first scrape")
    assert value(found, "redis_stream_length", db="db0", stream=S) == 1
    r.xadd(S, {"n": 2})
    before = writes(r)
    assert value(scrape(port), "redis_stream_length", db="db0", stream=S) == 2  # read afresh
    assert value(scrape(port), "redis_up") == 1
    assert writes(r) == before  # scrapes only read
    with pytest.raises(urllib.error.HTTPError) as elsewhere:
        scrape(port, "/")
    assert elsewhere.value.code == 404

    server.stop()  # Redis goes away: every scrape still answers, with redis_up 0 and nothing else
    assert scrape(port) == {("redis_up", frozenset()): 0}
    assert scrape(port) == {("redis_up", frozenset()): 0}
    server.start()  # back (empty: the test server keeps nothing)
    r.xadd(S, {"n": 3})
    found = wait_for(lambda: scrape(port).get(("redis_up", frozenset())) == 1 and scrape(port), what="Redis again")
    assert value(found, "redis_stream_length", db="db0", stream=S) == 1

    out, err = stop(exporter, signal.SIGINT)
    assert exporter.returncode == 0 and out == ""
    where = f"127.0.0.1:{server.port}"
    lines = err.splitlines()
    assert lines[0] == (
        f"serving the metrics of {S} from Redis at {where} on 127.0.0.1:{port}/metrics (read at every scrape); "
        "Ctrl-C to stop"
    )
    assert lines[1].startswith(f"cannot reach Redis at {where} (")  # said once, not at every scrape
    assert lines[1].endswith("; answering redis_up 0 until it can be read")
    assert lines[2:] == [f"reading Redis at {where} again"]
    assert "Traceback" not in err


def test_sigterm_stops_it_quietly(server):
    port = free_port()
    exporter = spawn("admin.py", "metrics", "--serve", f":{port}", url=server.url)
    wait_for(lambda: try_scrape(port), timeout=20, what="the first scrape")
    out, err = stop(exporter, signal.SIGTERM)
    assert exporter.returncode == 0, err
    assert err.startswith(f"serving the metrics of {S} from Redis at 127.0.0.1:{server.port} on :{port}/metrics")
    assert try_scrape(port) is None


def test_a_slot_that_moved_is_read_from_where_it_is_now(own_cluster):
    """A reshard while it serves: the next scrape follows the slot quietly, from its new node."""
    cluster = own_cluster(masters=3, replicas=0)
    db = RedisCluster.from_url(cluster.url)
    db.xadd(S, {"n": 1})
    db.xgroup_create(S, "g", "0")
    port = free_port()
    exporter = spawn("admin.py", "metrics", "--serve", f"127.0.0.1:{port}", url=cluster.url)
    found = wait_for(lambda: try_scrape(port), timeout=20, what="the first scrape")
    old = cluster.owner(shards.slot(S))
    key = {"db": "db0", "stream": S, "key": S, "dead_letter": f"{{{S}}}:dlq"}
    assert value(found, "stream_pubsub_stream_key_info", **key, node=f"127.0.0.1:{old.port}") == 1
    new = next(node for node in cluster.masters() if node is not old)
    cluster.migrate_slot(shards.slot(S), new)
    db.xadd(S, {"n": 2})

    found = scrape(port)

    assert value(found, "redis_stream_length", db="db0", stream=S) == 2
    assert value(found, "redis_stream_group_lag", db="db0", stream=S, group="g") == 2
    assert value(found, "stream_pubsub_stream_key_info", **key, node=f"127.0.0.1:{new.port}") == 1
    assert value(found, "redis_up") == 1
    out, err = stop(exporter, signal.SIGTERM)
    assert exporter.returncode == 0 and err.count("\n") == 1, err  # only the "serving ..." line
    db.close()
