"""Nothing lost: faults injected by signal or command, every produced ID checked against what
the consumers processed.

The journal is what a user sees: each consumer prints one line per processed reading (the
entry ID first) and flushes it before the XACK, so a line printed is a reading processed, and
a reading acknowledged always has its line. A consumer killed between the two prints a line
for a reading that will be delivered again: a duplicate, never a loss.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
import redis
from conftest import (
    ROOT,
    Full,
    group_info,
    processed,
    readings,
    run,
    sent_ids,
    spawn,
    stop,
    told,
    wait_blocked,
    wait_for,
)

pytestmark = pytest.mark.slow


def journaled(*journals: Path) -> list[str]:
    """The IDs of the readings these consumers' stdout files show as processed, so far."""
    return [entry_id for j in journals if j.exists() for _, entry_id in readings(j.read_text())]


def report(produced, done) -> tuple[int, int]:
    """(lost, duplicated) of a run, printed so a failure says how bad it was."""
    lost = len(set(produced) - set(done))
    duplicated = len(done) - len(set(done))
    print(f"produced {len(produced)}, processed {len(done)}: lost {lost}, duplicated {duplicated}")
    return lost, duplicated


class Consumers:
    """Background consumer.py processes, each writing its journal to its own file."""

    def __init__(self, url, folder: Path, *args):
        self.url, self.folder, self.args = url, folder, args
        self.port = urlparse(url).port
        self.procs: dict[str, subprocess.Popen] = {}

    def journal(self, name) -> Path:
        return self.folder / f"{name}.out"

    def start(self, name, *extra):
        out = open(self.journal(name), "a")
        err = open(self.folder / f"{name}.err", "a")
        self.procs[name] = spawn(
            "consumer.py", "group1", name, *self.args, *extra, url=self.url, stdout=out, stderr=err
        )
        out.close()
        err.close()
        return self.procs[name]

    def errors(self, name) -> str:
        return (self.folder / f"{name}.err").read_text()

    def processed(self) -> list[str]:
        return journaled(*(self.journal(n) for n in self.procs))

    def connected(self, process: subprocess.Popen) -> bool:
        """Has it a connection to Redis (or has it ended)? It sets its signal handlers before it connects."""
        try:
            return any(c.raddr and c.raddr.port == self.port for c in psutil.Process(process.pid).net_connections())
        except psutil.NoSuchProcess:
            return True

    def stop_all(self, timeout=15):
        codes = {}
        # A process still importing Python modules has no signal handler yet: one connected to Redis has.
        wait_for(lambda: all(self.connected(p) for p in self.procs.values()), what="every consumer connected")
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            codes[name] = p.wait(timeout)
        return codes


def test_kill_a_consumer_every_second_loses_nothing(server, r, tmp_path):
    """1. 10,000 readings, 3 consumers, one SIGKILLed every second and restarted under its name."""
    group = Consumers(server.url, tmp_path, "--count", "20", "--block", "200", "--stats-interval", "0")
    for name in ("c1", "c2", "c3"):
        group.start(name)
    wait_for(
        lambda: r.exists("app:event") and len(r.xinfo_consumers("app:event", "group1")) == 3,
        what="3 consumers registered",
    )
    producer_out = open(tmp_path / "producer.out", "w")
    producer = spawn(
        "producer.py", "sensor1", "--count", "10000", "--interval", "0.0002", url=server.url, stdout=producer_out
    )
    producer_out.close()
    victims = ["c1", "c2", "c3"]
    kills = 0
    while producer.poll() is None:
        time.sleep(1)
        victim = victims[kills % 3]
        group.procs[victim].kill()
        group.procs[victim].wait()
        group.start(victim)
        kills += 1
    _, err = producer.communicate()
    assert producer.returncode == 0, err
    produced = sent_ids((tmp_path / "producer.out").read_text())
    assert len(produced) == 10_000 and kills >= 2

    wait_for(lambda: set(produced) <= set(group.processed()), timeout=60, what="every reading processed")
    wait_for(lambda: group_info(r)["pending"] == 0, timeout=30, what="pending list empty")
    codes = group.stop_all()
    lost, _ = report(produced, group.processed())
    state = group_info(r)
    assert lost == 0
    assert state["pending"] == 0 and state["lag"] == 0
    assert codes == {"c1": 0, "c2": 0, "c3": 0}


def test_entries_of_a_dead_consumer_are_claimed_by_another(server, r, tmp_path):
    """2. A consumer SIGKILLed after reading, never restarted: another claims its entries."""
    group = Consumers(server.url, tmp_path, "--block", "200", "--stats-interval", "0")
    doomed = group.start("doomed", "--fail-rate", "1")  # reads, never acknowledges
    wait_for(lambda: r.exists("app:event"), what="group created")
    produced = sent_ids(run("producer.py", "sensor1", "--count", "50", url=server.url).stdout)
    wait_for(lambda: group_info(r)["pending"] == 50, what="the doomed consumer read all 50")
    doomed.kill()
    doomed.wait()
    assert group.processed() == []

    started = time.monotonic()
    group.start("rescuer", "--claim-idle", "500")
    wait_for(
        lambda: set(produced) <= set(journaled(group.journal("rescuer"))),
        timeout=10,
        what="the rescuer processed the dead consumer's entries",
    )
    took = time.monotonic() - started
    group.stop_all()
    # claim-idle (0.5 s) + one sweep period (0.25 s) + the time to start Python and connect
    assert took < 0.5 + 0.25 + 2.0, f"claimed after {took:.2f}s"
    assert report(produced, group.processed()) == (0, 0)
    assert group_info(r)["pending"] == 0
    assert "claimed 50" in group.errors("rescuer")


def test_redis_killed_and_restarted_with_aof(own_server, tmp_path):
    """3. Redis (AOF everysec) SIGKILLed mid-run, back after longer than any retry budget."""
    srv = own_server("--appendonly", "yes", "--appendfsync", "everysec", folder=tmp_path)
    r = redis.Redis.from_url(srv.url)
    group = Consumers(srv.url, tmp_path, "--block", "500", "--count", "50", "--stats-interval", "0")
    group.start("c1")
    group.start("c2")
    wait_for(
        lambda: r.exists("app:event") and len(r.xinfo_consumers("app:event", "group1")) == 2,
        what="consumers registered",
    )
    producer_out = open(tmp_path / "producer.out", "w")
    producer = spawn("producer.py", "sensor1", "--count", "0", "--interval", "0.002", url=srv.url, stdout=producer_out)
    producer_out.close()
    wait_for(lambda: r.xlen("app:event") > 300, what="readings flowing")
    time.sleep(1.5)  # let AOF fsync what was reported so far
    srv.kill()
    time.sleep(6)  # longer than redis-py's default retry budget (~4 s)
    srv.start()
    r = redis.Redis.from_url(srv.url)
    wait_for(lambda: r.xlen("app:event") > 0, what="AOF loaded")
    before = r.xlen("app:event")
    wait_for(lambda: r.xlen("app:event") > before + 300, timeout=20, what="the producer to carry on")
    _, err = stop(producer, signal.SIGINT)
    assert producer.returncode == 0, err
    assert "lost Redis" in err and "reconnected" in err
    produced = sent_ids((tmp_path / "producer.out").read_text())
    wait_for(
        lambda: set(produced) <= set(group.processed()),
        timeout=30,
        what="every reading the producer reported processed",
    )
    wait_for(lambda: group_info(r)["pending"] == 0, timeout=10, what="pending list empty")
    codes = group.stop_all()
    lost, _ = report(produced, group.processed())
    assert lost == 0
    assert set(produced) <= {i.decode() for i, _ in r.xrange("app:event")}
    assert codes == {"c1": 0, "c2": 0}
    for name in ("c1", "c2"):
        assert "lost Redis" in group.errors(name) and "reconnected" in group.errors(name)


def test_flushall_while_blocked_recreates_the_group(server, r, tmp_path):
    """4. FLUSHALL while consumers are blocked: the group comes back, later readings are processed."""
    group = Consumers(server.url, tmp_path, "--block", "1000", "--stats-interval", "0")
    group.start("c1")
    group.start("c2")
    wait_for(
        lambda: r.exists("app:event") and len(r.xinfo_consumers("app:event", "group1")) == 2,
        what="both consumers blocked on the group",
    )
    wait_blocked(r, readers=2)
    r.flushall()
    wait_for(lambda: r.exists("app:event"), timeout=5, what="the group recreated")
    produced = sent_ids(run("producer.py", "sensor1", "--count", "100", url=server.url).stdout)
    wait_for(lambda: set(produced) <= set(group.processed()), timeout=10, what="later readings processed")
    codes = group.stop_all()
    assert report(produced, group.processed()) == (0, 0)
    assert codes == {"c1": 0, "c2": 0}
    assert any("GROUP LOST" in group.errors(n) for n in ("c1", "c2"))
    assert group_info(r)["pending"] == 0


POISON = {
    "missing fields": {"sensor_id": "s1"},
    "non-numeric": {"sensor_id": "s1", "temp": "warm", "humidity": "0.5"},
    "NaN": {"sensor_id": "s1", "temp": "nan", "humidity": "0.5"},
    "infinite": {"sensor_id": "s1", "temp": "0.5", "humidity": "inf"},
    "non-UTF-8": {"sensor_id": b"s\xff\xfe", "temp": "0.5", "humidity": "0.5"},
    "oversized": {"sensor_id": "s" * 100_000, "temp": "0.5", "humidity": "0.5"},
    "empty": {"": ""},
    "empty sensor": {"sensor_id": "  ", "temp": "0.5", "humidity": "0.5"},
}
REASONS = {
    "missing fields": "missing field(s): temp, humidity",
    "non-numeric": "temp is not a number: 'warm'",
    "NaN": "temp is not a finite number: nan",
    "infinite": "humidity is not a finite number: inf",
    "non-UTF-8": "sensor_id is not valid UTF-8",
    "oversized": "sensor_id is 100000 bytes (limit 1024)",
    "empty": "missing field(s): sensor_id, temp, humidity",
    "empty sensor": "sensor_id is empty",
}


def test_poison_entries_are_dead_lettered_with_their_reason(server, r):
    """5. Poison of every kind mixed into 1,000 good readings."""
    good, poison = [], {}
    for i in range(1000):
        good.append(r.xadd("app:event", {"sensor_id": f"s{i % 3}", "temp": "0.5", "humidity": "0.25"}))
        if i % 100 == 50:
            for kind, fields in POISON.items():
                poison[r.xadd("app:event", fields)] = kind
    # Entries read by a consumer that then died, and whose data was trimmed away meanwhile.
    r.xgroup_create("app:event", "group1", "$")
    trimmed = [r.xadd("app:event", {"sensor_id": "gone", "temp": "1", "humidity": "1"}) for _ in range(3)]
    assert [i for i, _ in r.xreadgroup("group1", "dead", {"app:event": ">"})[0][1]] == trimmed
    r.xdel("app:event", *trimmed)
    r.xgroup_setid("app:event", "group1", "0")  # consumer.py reads everything else

    got = run("consumer.py", "group1", "c1", "--burst", "--claim-idle", "100", "--stats-interval", "0", url=server.url)
    assert got.returncode == 0, got.stderr
    assert "Traceback" not in got.stderr
    done = processed(got.stdout)
    assert sorted(done) == sorted(i.decode() for i in good)
    letters = r.xrange("app:event:dlq")
    assert len(letters) == len(poison) == 10 * len(POISON)
    for _, fields in letters:
        kind = poison[fields[b"dlq.id"]]
        prefix = "cannot be decoded" if kind == "non-UTF-8" else "invalid reading"  # the handler never sees it
        assert fields[b"dlq.error"].decode() == f"{prefix}: {REASONS[kind]}", kind
        assert fields[b"dlq.group"] == b"group1" and fields[b"dlq.consumer"] == b"c1"
        assert fields[b"dlq.deliveries"] == b"1"
        original = {k: v for k, v in fields.items() if not k.startswith(b"dlq.")}
        assert original == {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in POISON[kind].items()}
    assert group_info(r)["pending"] == 0
    assert "dead-lettered 80" in got.stderr and "trimmed-pending 3" in got.stderr


def test_slow_consumer_behind_a_capped_stream(server, r, tmp_path):
    """6. Entries trimmed by MAXLEN before delivery are counted; trimmed pending ones are cleared."""
    assert run("consumer.py", "group1", "c1", "--burst", url=server.url).returncode == 0  # group at $
    run("producer.py", "sensor1", "--count", "20", url=server.url)
    held = r.xreadgroup("group1", "dead", {"app:event": ">"}, count=20)[0][1]  # then it dies
    assert len(held) == 20
    # The producer caps the stream while the consumer is away: 1,000 more, only 100 kept.
    produced = sent_ids(
        run("producer.py", "sensor1", "--count", "1000", "--maxlen", "100", "--exact", url=server.url).stdout
    )
    assert r.xlen("app:event") == 100
    time.sleep(0.2)  # past --claim-idle 100: what the dead consumer held is claimable
    got = run("consumer.py", "group1", "c1", "--burst", "--claim-idle", "100", "--stats-interval", "0", url=server.url)
    assert got.returncode == 0, got.stderr
    assert processed(got.stdout) == produced[-100:]
    assert "trimmed-unread 900" in got.stderr
    assert "trimmed-pending 20" in got.stderr
    assert "900 entries were trimmed" in got.stderr
    state = group_info(r)
    # (Redis 7.0's own lag stays 900 too high after such a gap; the position is what counts.)
    assert state["pending"] == 0 and state["last-delivered-id"].decode() == produced[-1]


def test_slow_consumer_concurrent_with_a_capped_producer(server, r, tmp_path):
    """6b. The same while both run: every reading is either processed or counted as trimmed."""
    assert run("consumer.py", "group1", "c1", "--burst", url=server.url).returncode == 0
    out = open(tmp_path / "c1.out", "w")
    consumer = spawn(
        "consumer.py",
        "group1",
        "c1",
        "--count",
        "5",
        "--block",
        "100",
        "--stats-interval",
        "0",
        url=server.url,
        stdout=out,
    )
    out.close()
    produced = sent_ids(
        run("producer.py", "sensor1", "--count", "3000", "--maxlen", "50", "--exact", url=server.url).stdout
    )
    wait_for(
        lambda: group_info(r)["last-delivered-id"].decode() == produced[-1] and group_info(r)["pending"] == 0,
        what="the consumer to catch up with the producer",
    )
    _, err = stop(consumer)
    assert consumer.returncode == 0, err
    assert "Traceback" not in err
    done = journaled(tmp_path / "c1.out")
    counted = int(re.search(r"trimmed-unread (\d+)", err).group(1))
    assert counted > 0 and len(done) < len(produced)
    assert len(done) + counted == len(produced)
    assert group_info(r)["pending"] == 0


def test_sigterm_during_processing_acknowledges_the_batch(server, r, tmp_path):
    """7. SIGTERM while a large batch is being processed: it is finished and acknowledged."""
    run("producer.py", "sensor1", "--count", "100000", "-q", url=server.url)
    out = open(tmp_path / "c1.out", "w")
    consumer = spawn(
        "consumer.py",
        "group1",
        "c1",
        "--start-from",
        "0",
        "--count",
        "10000",  # the most a read may take
        "--stats-interval",
        "0",
        url=server.url,
        stdout=out,
    )
    out.close()
    wait_for(lambda: (tmp_path / "c1.out").stat().st_size > 0, interval=0.005, what="first output")
    _, err = stop(consumer)
    assert consumer.returncode == 0, err
    done = journaled(tmp_path / "c1.out")
    state = group_info(r)
    assert state["pending"] == 0
    assert state["entries-read"] == len(done) and len(done) % 10000 == 0 and len(done) < 100_000
    assert state["last-delivered-id"].decode() == done[-1]
    assert re.search(rf"processed {len(done)},", err)


def test_least_privilege_users(own_server):
    """8. The README's ACL users, with only what each script needs: the flow works; the producer
    can neither read nor delete."""
    srv = own_server()
    admin = redis.Redis.from_url(srv.url)
    rules = [line.split() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("ACL SETUSER ")]
    assert [rule[2] for rule in rules] == ["producer", "consumer"]
    for rule in rules:
        admin.execute_command(*rule)
    producer_url = f"redis://producer:producer-password@127.0.0.1:{srv.port}/0"
    consumer_url = f"redis://consumer:consumer-password@127.0.0.1:{srv.port}/0"

    got = run("consumer.py", "group1", "c1", "--burst", url=consumer_url)
    assert got.returncode == 0, got.stderr
    sent_out = run("producer.py", "sensor1", "--count", "200", url=producer_url)
    assert sent_out.returncode == 0, sent_out.stderr
    admin.xadd("app:event", {"sensor_id": "s", "temp": "hot", "humidity": "1"})  # poison
    got = run("consumer.py", "group1", "c1", "--burst", "--claim-idle", "100", url=consumer_url)
    assert got.returncode == 0, got.stderr
    assert sorted(processed(got.stdout)) == sorted(sent_ids(sent_out.stdout))
    assert admin.xlen("app:event:dlq") == 1
    assert group_info(admin)["pending"] == 0
    assert "password" not in got.stderr + sent_out.stderr

    as_producer = redis.Redis.from_url(producer_url)
    for forbidden in (
        lambda: as_producer.xrange("app:event"),
        lambda: as_producer.delete("app:event"),
        lambda: as_producer.xtrim("app:event", 0),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            forbidden()
    assert admin.xlen("app:event") == 201


def test_producer_waits_while_redis_is_full(own_server, tmp_path):
    """Server full (OOM at maxmemory): the producer backs off; nothing dropped or stored twice."""
    srv = own_server("--maxmemory", "8mb", "--maxmemory-policy", "noeviction")
    r = redis.Redis.from_url(srv.url)
    out, log = open(tmp_path / "producer.out", "w"), open(tmp_path / "producer.err", "w")
    producer = spawn(
        "producer.py", "sensor1", "--count", "0", "--interval", "0.005", url=srv.url, stdout=out, stderr=log
    )
    out.close()
    log.close()
    wait_for(lambda: r.xlen("app:event") > 20, what="readings flowing")
    full = Full(r)  # Redis at maxmemory: even a small write fails
    said = lambda: f"{told(producer, tmp_path / 'producer.err')}; used_memory {r.info('memory')['used_memory']}"  # noqa: E731
    wait_for(full.still(lambda: "is full (OOM)" in (tmp_path / "producer.err").read_text()), what="OOM", tell=said)
    held = r.xlen("app:event")
    time.sleep(0.5)
    assert producer.poll() is None  # refused (maybe let through now and then as memory moves), alive
    full.make_room()
    wait_for(lambda: r.xlen("app:event") > held + 20, what="the producer to carry on", tell=said)
    stop(producer, signal.SIGINT)
    err = (tmp_path / "producer.err").read_text()
    assert producer.returncode == 0, err
    assert "is full (OOM)" in err and "has room again" in err and "Traceback" not in err
    produced = sent_ids((tmp_path / "producer.out").read_text())
    stored = [i.decode() for i, _ in r.xrange("app:event")]
    assert stored == produced  # each reported reading stored once, none stored unreported


def test_scripts_wait_while_redis_loads_its_data(own_server, tmp_path):
    """Redis restarting (LOADING): the scripts wait for it instead of exiting."""
    srv = own_server(folder=tmp_path)
    r = redis.Redis.from_url(srv.url)
    with r.pipeline(transaction=False) as pipe:
        for i in range(20_000):
            pipe.set(f"ballast:{i}", i)
        pipe.execute()
    ids = [r.xadd("app:event", {"sensor_id": "s1", "temp": "0.5", "humidity": "0.5"}).decode() for _ in range(10)]
    r.xgroup_create("app:event", "group1", "0")
    r.save()
    srv.stop()
    # 100 µs per key: about 2 s of LOADING, answering clients (-LOADING) every 1 KiB loaded
    srv.args += ["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"]
    srv.start(loading_ok=True)
    with pytest.raises(redis.exceptions.BusyLoadingError):
        redis.Redis.from_url(srv.url).ping()

    consumer = spawn("consumer.py", "group1", "c1", "--burst", url=srv.url)
    producer = spawn("producer.py", "sensor1", url=srv.url)
    out, err = producer.communicate(timeout=30)
    assert producer.returncode == 0, err
    assert "is loading its data" in err and sent_ids(out)
    out, err = consumer.communicate(timeout=30)
    assert consumer.returncode == 0, err
    assert "is loading its data" in err and "Traceback" not in err
    assert processed(out)[:10] == ids
    assert group_info(redis.Redis.from_url(srv.url))["pending"] == 0
