"""consumer.py and producer.py --metrics ADDRESS: /metrics parsed with prometheus_client's own
parser holds what the script did and what Redis holds; /livez turns 503 while a handler hangs (not
while a slow one works within --handler-timeout); /readyz is 503 while Redis is away and 200 again
once it is back; a bad address is one line and exit 2 before Redis is asked anything.
"""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
import redis
from conftest import handlers, journal, run, spawn, stop, wait_for
from prometheus_client.parser import text_string_to_metric_families

from stream_pubsub import metric_names
from stream_pubsub.local_server import free_port

S, DLQ = "app:event", "app:event:dlq"
SUMMARY = re.compile(r"c1: stopped after \d+\.\ds: (.*)\n")


def get(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.read().decode()


def scrape(port: int) -> dict:
    """{(sample name, frozenset of its labels): value}, parsed by prometheus_client's own parser."""
    status, text = get(port)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def answers(port: int) -> dict | None:
    """The metrics, once the script serves them (None before)."""
    try:
        return scrape(port)
    except OSError:
        return None


def status(port: int, path: str) -> int | None:
    try:
        return get(port, path)[0]
    except OSError:
        return None


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def outcomes(found: dict, **me) -> dict[str, float]:
    return {
        outcome: value(found, "stream_pubsub_consumer_entries_total", **me, outcome=outcome)
        for outcome in metric_names.OUTCOMES
    }


def group(r, name: str = "g") -> dict:
    return next((g for g in r.xinfo_groups(S) if g["name"] == name.encode()), {}) if r.exists(S) else {}


ME = {"stream": S, "group": "g", "consumer": "c1"}


# -- the exposition text -------------------------------------------------------------------------
def test_metrics_parse_and_hold_what_the_consumer_did_and_redis_holds(server, r):
    assert run("producer.py", "sensor1", "--count", "10", "-q", url=server.url).returncode == 0
    assert run("producer.py", "sensor2", "--field", "temp=hot", url=server.url).returncode == 0  # poison
    added = [int(entry_id.split(b"-")[0]) for entry_id, _ in r.xrange(S)]
    port, started = free_port(), time.time()
    consumer = spawn(
        "consumer.py", "g", "c1", "--start-from", "0", "-q", "--metrics", f"127.0.0.1:{port}", url=server.url
    )
    wait_for(lambda: group(r).get("entries-read") == 11 and group(r)["pending"] == 0, timeout=20, what="all read")
    found = wait_for(lambda: (f := answers(port)) and value(f, "stream_pubsub_consumer_ready", **ME) == 1 and f)
    scraped = time.time()

    assert outcomes(found, **ME) == {
        "processed": 10,
        "failed": 0,
        "dead_lettered": 1,
        "claimed": 0,
        "recovered": 0,
        "trimmed": 0,
        "fanout_added": 0,
    }
    assert r.xlen(DLQ) == 1
    assert value(found, "stream_pubsub_consumer_handler_seconds_count", **ME) == 11  # the poison reached it too
    assert value(found, "stream_pubsub_consumer_deliveries_count", **ME) == 11
    assert value(found, "stream_pubsub_consumer_deliveries_sum", **ME) == 11  # each delivered once
    # End to end: from each entry's ID to its XACK, so between (consumer start - ID) and (scrape - ID)
    # for each of the 10 acknowledged after processing (the poison was acknowledged as it was dead-lettered).
    assert value(found, "stream_pubsub_consumer_end_to_end_seconds_count", **ME) == 10
    total = value(found, "stream_pubsub_consumer_end_to_end_seconds_sum", **ME)
    good = added[:10]
    assert sum(started - ms / 1000 for ms in good) - 0.01 <= total <= sum(scraped - ms / 1000 for ms in good) + 0.01
    buckets = [
        (float(dict(labels)["le"]), n)
        for (name, labels), n in found.items()
        if name == "stream_pubsub_consumer_end_to_end_seconds_bucket"
    ]
    assert sorted(buckets) == sorted(buckets, key=lambda b: (b[1], b[0])) and max(buckets)[1] == 10  # cumulative
    assert value(found, "stream_pubsub_consumer_reconnects_total", **ME) == 0
    for name in (
        "stream_pubsub_consumer_last_loop_timestamp_seconds",
        "stream_pubsub_consumer_last_ack_timestamp_seconds",
    ):
        assert started <= value(found, name, **ME) <= scraped, name
    assert value(found, "stream_pubsub_consumer_live", **ME) == 1
    info = r.info("server")
    name = info.get("server_name", "redis")
    version = info[f"{name}_version"]
    assert value(found, "stream_pubsub_server_info", server=name, version=version) == 1
    ours = {n for n, _ in found if n.startswith("stream_pubsub_consumer_")}
    assert all(dict(labels).items() >= ME.items() for n, labels in found if n in ours)  # every one labelled
    assert "process_resident_memory_bytes" in {n for n, _ in found}

    code, text = get(port, "/livez")
    assert code == 200 and re.fullmatch(
        r"live: its loop turned \d+\.\ds ago \(bound: --block 2000 ms \+ 10 s\)\n", text
    )
    assert get(port, "/readyz") == (200, "ready: c1 of group g on app:event, reading\n")
    assert get(port, "/")[0] == 404

    out, err = stop(consumer)
    assert consumer.returncode == 0 and "Traceback" not in err
    summary = SUMMARY.search(err)  # the summary line is the same as without --metrics
    assert summary[1] == "processed 10, failed 0, claimed 0, dead-lettered 1, trimmed-pending 0, trimmed-unread 0"


def test_a_fast_handlers_calls_are_all_counted_though_most_batches_go_untimed(server, r):
    """The default handler takes a few µs: one batch in 8 is timed, the calls of the others counted.
    Every call counts once, the poison's included, and an entry the handler never saw not at all."""
    for sensor in ("sensor1", "sensor2", "sensor3"):
        assert run("producer.py", sensor, "--count", "1000", "-q", url=server.url).returncode == 0
        r.xadd(S, {"sensor_id": sensor, "temp": "hot", "humidity": "50"})  # poison: the handler refuses it
    r.xadd(S, {"sensor_id": b"\xff"})  # not UTF-8: dead-lettered before any handler sees it
    port = free_port()
    consumer = spawn(
        "consumer.py", "g", "c1", "--start-from", "0", "-q", "--metrics", f"127.0.0.1:{port}", url=server.url
    )
    wait_for(lambda: group(r).get("entries-read") == 3004 and group(r)["pending"] == 0, timeout=30, what="all read")
    found = wait_for(lambda: (f := answers(port)) and value(f, "stream_pubsub_consumer_ready", **ME) == 1 and f)
    stop(consumer)

    assert outcomes(found, **ME)["processed"] == 3000 and outcomes(found, **ME)["dead_lettered"] == 4
    assert r.xlen(DLQ) == 4
    assert value(found, "stream_pubsub_consumer_handler_seconds_count", **ME) == 3003  # 3,000 and 3 poisons
    assert 0 < value(found, "stream_pubsub_consumer_handler_seconds_sum", **ME) < 3003 * 0.02
    assert value(found, "stream_pubsub_consumer_deliveries_count", **ME) == 3004  # each delivered, once


FANOUT = """
def process(message_id, message):
    return {"from": message_id, "sensor": message["sensor_id"]}
"""


def test_recovered_claimed_fanout_and_trimmed_outcomes(server, r, tmp_path):
    env = handlers(tmp_path, twice=FANOUT)
    assert run("producer.py", "sensor1", "--count", "5", "-q", url=server.url).returncode == 0
    for name, pending in (("c1", 5), ("c3", 9)):  # each fails what it reads, and is killed holding it
        if name == "c3":
            assert run("producer.py", "sensor2", "--count", "4", "-q", url=server.url).returncode == 0
        failing = spawn("consumer.py", "g", name, "--start-from", "0", "--fail-rate", "1", "-q", url=server.url)
        wait_for(lambda n=pending: group(r).get("pending") == n, timeout=20, what=f"{name} failing")
        stop(failing, signal.SIGKILL)
    port = free_port()
    args = ("--claim-idle", "100", "--handler", "twice:process", "--fanout", "app:out", "--metrics", f":{port}")
    consumer = spawn("consumer.py", "g", "c1", *args, url=server.url, env=env)
    wait_for(lambda: group(r).get("pending") == 0 and r.xlen("app:out") == 9, timeout=20, what="recovered and claimed")
    found = wait_for(lambda: (f := answers(port)) and outcomes(f, **ME)["claimed"] == 4 and f, what="a scrape")
    assert outcomes(found, **ME) == {
        "processed": 9,
        "failed": 0,
        "dead_lettered": 0,
        "claimed": 4,  # c3's, idle past --claim-idle
        "recovered": 5,  # its own, from before it was killed
        "trimmed": 0,
        "fanout_added": 9,  # one output each, in app:out
    }
    assert value(found, "stream_pubsub_consumer_deliveries_count", **ME) == 9
    assert value(found, "stream_pubsub_consumer_deliveries_sum", **ME) == 18  # each was delivered twice
    assert value(found, "stream_pubsub_consumer_deliveries_bucket", **ME, le="1.0") == 0
    assert value(found, "stream_pubsub_consumer_deliveries_bucket", **ME, le="2.0") == 9
    assert value(found, "stream_pubsub_consumer_end_to_end_seconds_count", **ME) == 9
    stop(consumer)
    assert consumer.returncode == 0

    # 30 more while nobody reads, the stream capped at 10: 20 of them are gone before the group reads them
    assert (
        run("producer.py", "sensor3", "--count", "30", "--maxlen", "10", "--exact", "-q", url=server.url).returncode
        == 0
    )
    consumer = spawn("consumer.py", "g", "c1", "-q", "--metrics", f"127.0.0.1:{port}", url=server.url)
    last = r.xrevrange(S, count=1)[0][0]
    wait_for(lambda: group(r)["last-delivered-id"] == last and group(r)["pending"] == 0, timeout=20, what="read on")
    found = wait_for(lambda: (f := answers(port)) and outcomes(f, **ME)["processed"] == 10 and f, what="a scrape")
    assert outcomes(found, **ME)["trimmed"] == 20
    out, err = stop(consumer)
    assert "trimmed-unread 20" in err and consumer.returncode == 0


def test_a_sharded_stream_labels_the_latency_by_shard_and_the_producer_by_its_shard(server, r):
    port, producer_port = free_port(), free_port()
    args = ("--shards", "2", "--count", "0", "--interval", "0.01", "-q")
    producers = [spawn("producer.py", "s1", *args, "--metrics", f"127.0.0.1:{producer_port}", url=server.url)]
    producers += [spawn("producer.py", sensor, *args, url=server.url) for sensor in ("s2", "s3", "s4")]
    wait_for(lambda: len(r.keys("app:event:{*")) == 2, timeout=20, what="both shards")  # s1..s4 cover both
    metrics = ("--metrics", f"127.0.0.1:{port}")
    consumer = spawn("consumer.py", "g", "c1", "--start-from", "0", "-q", *metrics, url=server.url)

    def both(found):
        return all(
            (value(found, "stream_pubsub_consumer_end_to_end_seconds_count", **ME, shard=s) or 0) > 0 for s in "01"
        )

    wait_for(lambda: (f := answers(port)) and both(f), timeout=20, what="entries of both shards acknowledged")
    from stream_pubsub.shards import route

    found = wait_for(lambda: answers(producer_port), what="the producer's metrics")
    assert value(found, "stream_pubsub_producer_sent_total", stream=S, shard=str(route("s1", 2))) > 0
    for process in [consumer, *producers]:
        stop(process)
        assert process.returncode == 0


# -- /livez and /readyz --------------------------------------------------------------------------
SLOW_OR_HUNG = """
import time

from journal import journal


def process(message_id, message):
    journal("start", message.get("sensor_id"))
    time.sleep(3600 if message.get("hang") else float(message.get("slow", 0)))
    journal("done", message.get("sensor_id"))
"""


def test_livez_turns_503_while_a_handler_hangs_not_while_a_slow_one_works(server, r, tmp_path):
    env = handlers(tmp_path, work=SLOW_OR_HUNG)
    port = free_port()
    args = ("--handler", "work:process", "--claim-idle", "1000", "--handler-timeout", "2000", "--block", "500")
    consumer = spawn("consumer.py", "g", "c1", *args, "--metrics", f"127.0.0.1:{port}", url=server.url, env=env)
    wait_for(lambda: status(port, "/readyz") == 200, timeout=20, what="ready")
    code, text = get(port, "/livez")
    assert code == 200 and "(bound: --block 500 ms + 10 s)" in text

    assert run("producer.py", "slow", "--field", "slow=1.5", url=server.url).returncode == 0
    wait_for(lambda: ["start", "slow"] in journal(tmp_path), what="the slow handler at work")
    code, text = get(port, "/livez")  # within --handler-timeout: live
    assert code == 200 and text.startswith("live: the batch in hand has been in the handler's hands for "), text
    wait_for(lambda: ["done", "slow"] in journal(tmp_path), what="the slow handler done")

    assert run("producer.py", "stuck", "--field", "hang=1", url=server.url).returncode == 0
    wait_for(lambda: ["start", "stuck"] in journal(tmp_path), what="the hung handler at work")
    code, text = wait_for(lambda: (got := get(port, "/livez"))[0] == 503 and got, timeout=10, what="503")
    assert re.fullmatch(
        r"not live: the batch in hand has been in the handler's hands for \d+\.\ds "
        r"\(bound: --handler-timeout 2000 ms\)\n",
        text,
    )
    assert value(scrape(port), "stream_pubsub_consumer_live", **ME) == 0
    assert get(port, "/readyz")[0] == 200  # connected all the same: restarting it is the cure, not waiting
    (pending,) = r.xpending_range(S, "g", "-", "+", 10)  # the hung one stays pending, for the others to claim
    assert (
        pending["consumer"] == b"c1"
        and r.xrange(S, pending["message_id"], pending["message_id"])[0][1][b"hang"] == b"1"
    )
    stop(consumer, signal.SIGKILL)


SLOW = """
import time


def process(message_id, message):
    time.sleep(0.001)
"""


@pytest.mark.slow
def test_a_long_recovery_of_its_own_pending_entries_is_live(server, r, tmp_path):
    """10,000 entries re-read one at a time (each a batch of one, with its round trips and 1 ms of
    handler): longer than the loop's bound of --block + 10 s without a turn of the loop, and live
    all along, also between two batches (no batch in hand then): it takes batch after batch."""
    assert run("producer.py", "s1", "--count", "10000", "-q", url=server.url).returncode == 0
    r.xgroup_create(S, "g", "0")
    r.xreadgroup("g", "c1", {S: ">"}, count=10000)  # delivered to c1, which died before acknowledging any
    port, env = free_port(), handlers(tmp_path, slow=SLOW)
    args = ("--handler", "slow:process", "--block", "100", "--metrics", f"127.0.0.1:{port}")
    consumer = spawn("consumer.py", "g", "c1", *args, url=server.url, env=env)
    wait_for(lambda: status(port, "/livez"), timeout=20, what="its metrics")
    started, answers_seen = time.monotonic(), []
    while group(r)["pending"]:
        answers_seen.append(get(port, "/livez"))
        time.sleep(0.2)
    assert time.monotonic() - started > 10.1  # (the bound: --block 100 ms + 10 s)
    assert {code for code, _ in answers_seen} == {200}, [text for code, text in answers_seen if code != 200][:1]
    assert outcomes(scrape(port), **ME)["recovered"] == 10000
    stop(consumer)
    assert consumer.returncode == 0


def test_readyz_503_while_redis_is_away_and_200_once_it_is_back(own_server, tmp_path):
    server = own_server("--appendonly", "yes")
    r = redis.Redis.from_url(server.url)
    port, producer_port = free_port(), free_port()
    consumer = spawn("consumer.py", "g", "c1", "-q", "--block", "200", "--metrics", f"127.0.0.1:{port}", url=server.url)
    producer = spawn(
        "producer.py",
        "s1",
        "--count",
        "0",
        "--interval",
        "0.1",
        "-q",
        "--metrics",
        f"127.0.0.1:{producer_port}",
        url=server.url,
    )
    wait_for(lambda: status(port, "/readyz") == 200, timeout=20, what="ready")
    wait_for(lambda: group(r).get("entries-read"), timeout=20, what="the consumer at work")

    server.stop()
    where = f"127.0.0.1:{server.port}"
    code, text = wait_for(lambda: (got := get(port, "/readyz"))[0] == 503 and got, timeout=20, what="not ready")
    assert re.fullmatch(rf"not ready: Redis at {where} is away, reconnecting for \d+\.\ds\n", text)
    code, text = get(port, "/livez")  # waiting for Redis is no reason to restart it
    assert code == 200 and text.startswith(f"live: waiting for Redis at {where} to come back, for ")
    found = scrape(port)
    assert (value(found, "stream_pubsub_consumer_ready", **ME), value(found, "stream_pubsub_consumer_live", **ME)) == (
        0,
        1,
    )

    producer_lost = wait_for(lambda: (f := answers(producer_port)) and f, what="the producer's metrics")
    wait_for(
        lambda: value(answers(producer_port), "stream_pubsub_producer_reconnects_total", stream=S) == 1,
        what="the producer to notice",
    )
    assert value(producer_lost, "stream_pubsub_producer_sent_total", stream=S) > 0

    server.start()
    wait_for(
        lambda: get(port, "/readyz") == (200, "ready: c1 of group g on app:event, reading\n"), timeout=30, what="ready"
    )
    read = group(r)["last-delivered-id"]  # (entries-read may be unknown after the restart: the position moves)
    wait_for(lambda: group(r)["last-delivered-id"] != read, timeout=20, what="reading again")
    assert value(scrape(port), "stream_pubsub_consumer_reconnects_total", **ME) == 1
    sent = value(answers(producer_port), "stream_pubsub_producer_sent_total", stream=S)
    wait_for(lambda: value(answers(producer_port), "stream_pubsub_producer_sent_total", stream=S) > sent)
    assert value(answers(producer_port), "stream_pubsub_producer_reconnects_total", stream=S) == 1
    for process in (producer, consumer):
        out, err = stop(process)
        assert process.returncode == 0 and err.count(f"reconnected to {where}") == 1, err


# -- the producer --------------------------------------------------------------------------------
def test_producer_metrics_hold_what_redis_stored(server, r):
    port = free_port()
    producer = spawn(
        "producer.py",
        "s1",
        "--count",
        "0",
        "--interval",
        "0.02",
        "-q",
        "--metrics",
        f"127.0.0.1:{port}",
        url=server.url,
    )
    wait_for(lambda: r.exists(S) and r.xlen(S) >= 5, timeout=20, what="readings")
    r.execute_command("CLIENT", "PAUSE", 3000, "WRITE")  # its next XADD waits: what it counted is what Redis holds
    try:
        found = wait_for(
            lambda: (f := answers(port)) and value(f, "stream_pubsub_producer_sent_total", stream=S) == r.xlen(S) and f,
            timeout=2.5,
            what="the count of what Redis holds",
        )
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    stored = value(found, "stream_pubsub_producer_sent_total", stream=S)
    assert value(found, "stream_pubsub_producer_send_seconds_count", stream=S) == stored
    assert 0 < value(found, "stream_pubsub_producer_send_seconds_sum", stream=S) < stored  # each well under 1 s
    assert value(found, "stream_pubsub_producer_not_confirmed_total", stream=S) == 0
    assert value(found, "stream_pubsub_producer_reconnects_total", stream=S) == 0
    out, err = stop(producer)
    sent = int(re.search(r"sent (\d+) readings", err)[1])
    assert producer.returncode == 0 and sent == r.xlen(S) >= stored


def test_producer_readings_not_confirmed_by_replicas(server, r):
    port = free_port()
    args = ("--count", "0", "--interval", "0.05", "--wait-replicas", "1", "--wait-timeout", "20", "-q")
    producer = spawn("producer.py", "s1", *args, "--metrics", f"127.0.0.1:{port}", url=server.url)
    wait_for(lambda: r.exists(S) and r.xlen(S) >= 3, timeout=20, what="readings")
    found = wait_for(
        lambda: (f := answers(port)) and value(f, "stream_pubsub_producer_not_confirmed_total", stream=S) >= 3 and f
    )
    assert value(found, "stream_pubsub_producer_sent_total", stream=S) == 0  # no replica: none confirmed
    out, err = stop(producer)
    assert "stored but not confirmed by 1 replica" in err and producer.returncode == 1


def test_the_bulk_path_with_metrics_stores_every_reading(server, r):
    done = run("producer.py", "s1", "--count", "5000", "-q", "--metrics", f"127.0.0.1:{free_port()}", url=server.url)
    assert done.returncode == 0 and "sent 5000 readings" in done.stderr
    assert r.xlen(S) == 5000


# -- a bad address -------------------------------------------------------------------------------
@pytest.fixture
def taken():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("script", [("consumer.py", "g", "c1"), ("producer.py", "s1", "--count", "0")])
@pytest.mark.parametrize("kind", ["malformed", "no port", "taken"])
def test_a_bad_address_is_one_line_and_exit_2_before_redis_is_asked(script, kind, server, r, taken):
    address = {"malformed": "9102", "no port": "localhost", "taken": taken}[kind]
    done = run(*script, "--metrics", address, url=server.url, timeout=20)
    says = (
        f"Error: --metrics {address}: the port is taken (something else listens there)\n"
        if kind == "taken"
        else f"Error: --metrics {address!r} is not an address to listen on: give HOST:PORT, like :9103 "
        "(every interface) or 127.0.0.1:9103\n"
    )
    assert (done.returncode, done.stderr, done.stdout) == (2, says, "")
    assert r.dbsize() == 0  # nothing created: no stream, no group
    # and Redis is never asked: with nothing listening at the URL, the address is still what is said
    down = run(*script, "--metrics", address, url=f"redis://127.0.0.1:{free_port()}/0", timeout=20)
    assert (down.returncode, down.stderr) == (2, says)


def test_a_one_shot_producer_takes_no_metrics_but_ignores_the_deployments(server, r):
    port = free_port()
    done = run("producer.py", "s1", "--metrics", f"127.0.0.1:{port}", url=server.url)
    assert done.returncode == 2 and done.stderr.endswith(
        "Error: --metrics is for a producer that runs on: give --count 0 (until Ctrl-C) or more\n"
    )
    assert r.dbsize() == 0
    done = run("producer.py", "s1", url=server.url, env={"METRICS_ADDRESS": f"127.0.0.1:{port}"})
    assert done.returncode == 0 and done.stdout.startswith("message ") and r.xlen(S) == 1
