"""A real Prometheus (Debian's `prometheus` package; .ci/run installs it) scrapes
`admin.py metrics --serve`, the consumers' and the producer's --metrics, while the scripts play a
scenario for real: a consumer that fails every reading and is killed holding them, a poison
reading dead-lettered, a backlog, a producer publishing on. Queried through its HTTP API, it returns
the numbers Redis holds and those the consumers processed; every dashboard expression returns
data; the alerts of monitoring/alerts.yml fire (the consumers' ones: entries trimmed unread, a
consumer not live, as pending: their `for` is promtool's to test, in test_monitoring.py).

Prometheus runs on a free port with a storage folder of its own and scrapes every second; it is
killed at the end of the test.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request

import pytest
from conftest import handlers, run, spawn, stop, wait_for
from test_monitoring import MONITORING, NAME

from stream_pubsub import metric_names
from stream_pubsub.local_server import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="Prometheus is not installed (Debian: apt-get install prometheus; .ci/run installs it)"
)
S, DLQ = "app:event", "app:event:dlq"
SERVER_SIDE = {metric.name for metric in metric_names.SERVER_SIDE}
# What the dashboard's Grafana variables stand for when an expression is run here.
VARIABLES = {"$__rate_interval": "10s", "$stream": ".*"}


class Prometheus:
    def __init__(self, folder, targets: dict[str, str | list[str]]):
        self.port = free_port()
        jobs = [
            {"job_name": job, "static_configs": [{"targets": [target] if isinstance(target, str) else target}]}
            for job, target in targets.items()
        ]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(MONITORING / "alerts.yml")],
            "scrape_configs": jobs,
        }
        (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "prometheus.log", "w"),
        )
        wait_for(self.ready, timeout=30, what="Prometheus to be ready")

    def ready(self) -> bool:
        assert self.process.poll() is None, "Prometheus exited at start (see its log in the test's folder)"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The one value of an expression; None while it has none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def prometheus(tmp_path):
    started = []

    def start(targets: dict[str, str]) -> Prometheus:
        started.append(Prometheus(tmp_path, targets))
        return started[-1]

    yield start
    for p in started:
        p.kill()


def scenario(url: str, r) -> None:
    """Failures, a consumer killed holding them, a poison reading dead-lettered, a backlog."""
    assert run("producer.py", "sensor1", "--count", "20", "-q", url=url).returncode == 0
    failing = spawn("consumer.py", "g", "c1", "--start-from", "0", "--fail-rate", "1", "-q", url=url)
    wait_for(lambda: r.exists(S) and r.xinfo_groups(S) and r.xinfo_groups(S)[0]["pending"] == 20, what="20 failures")
    stop(failing, signal.SIGKILL)  # killed: its 20 entries stay pending with it
    assert run("producer.py", "sensor2", "--field", "temp=hot", url=url).returncode == 0  # poison
    assert run("producer.py", "sensor3", "--count", "5", "-q", url=url).returncode == 0
    done = run("consumer.py", "g", "c2", "--burst", "-q", url=url)
    assert done.returncode == 0, done.stderr
    assert run("producer.py", "sensor4", "--count", "7", "-q", url=url).returncode == 0  # not read yet


def test_prometheus_scrapes_the_numbers_redis_holds(server, r, prometheus):
    scenario(server.url, r)
    port = free_port()
    exporter = spawn("admin.py", "metrics", "--serve", f"127.0.0.1:{port}", url=server.url)
    p = prometheus({"stream-pubsub-admin": f"127.0.0.1:{port}"})

    # What Redis holds after the scenario, read here, then asked of Prometheus.
    (group,) = r.xinfo_groups(S)
    consumers = {c["name"].decode(): c["pending"] for c in r.xinfo_consumers(S, "g")}
    assert (group["pending"], group["lag"], consumers, r.xlen(DLQ)) == (20, 7, {"c1": 20, "c2": 0}, 1)
    g = f'stream="{S}", group="g"'
    wait_for(lambda: p.value(f'redis_stream_length{{stream="{S}"}}') == r.xlen(S) == 33, timeout=30, what="a scrape")
    assert p.value(f"redis_stream_group_lag{{{g}}}") == group["lag"]
    assert p.value(f"redis_stream_group_messages_pending{{{g}}}") == group["pending"]
    assert p.value(f'redis_stream_group_consumer_messages_pending{{{g}, consumer="c1"}}') == consumers["c1"]
    assert p.value(f'redis_stream_group_consumer_messages_pending{{{g}, consumer="c2"}}') == consumers["c2"]
    assert p.value(f"redis_stream_group_consumers{{{g}}}") == 2
    assert p.value(f'stream_pubsub_dead_letters{{stream="{S}"}}') == r.xlen(DLQ)
    assert p.value(f"stream_pubsub_group_pending_max_deliveries{{{g}}}") == 1
    assert p.value(f'redis_stream_entries_added_total{{stream="{S}"}}') == r.xinfo_stream(S)["entries-added"]
    assert p.value('up{job="stream-pubsub-admin"}') == p.value("redis_up") == 1

    # The alert on dead letters, evaluated by this Prometheus from monitoring/alerts.yml.
    firing = f'ALERTS{{alertname="StreamDeadLetters", alertstate="firing", stream="{S}"}}'
    wait_for(lambda: p.value(firing) == 1, timeout=30, what="the dead-letter alert")
    assert p.query('ALERTS{alertname="StreamGroupWithoutConsumers"}') == []

    # Every dashboard expression on the server's metrics returns data; on Redis 7.0, which does
    # not report a consumer's `inactive`, that one returns none.
    reports_inactive = "inactive" in r.xinfo_consumers(S, "g")[0]
    for expr in server_side_dashboard_exprs():
        for variable, stands_for in VARIABLES.items():
            expr = expr.replace(variable, stands_for)
        if "inactive" in expr and not reports_inactive:
            assert p.query(expr) == [], expr
        else:
            wait_for(lambda expr=expr: p.query(expr), timeout=15, what=f"data for {expr}")
    stop(exporter, signal.SIGTERM)


def server_side_dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    server_side = [e for e in exprs if set(NAME.findall(e)) <= SERVER_SIDE]
    assert len(server_side) >= 14  # the rest need consumer.py and producer.py --metrics
    return server_side


def group_g(r) -> dict:
    return next(g for g in r.xinfo_groups(S) if g["name"] == b"g")


def all_dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def returns_data(p: Prometheus, r, expr: str) -> None:
    """The dashboard's expression, its Grafana variables filled in, returns data (on Redis 7.0, which
    does not report a consumer's `inactive`, that one returns none)."""
    for variable, stands_for in VARIABLES.items():
        expr = expr.replace(variable, stands_for)
    if "inactive" in expr and "inactive" not in r.xinfo_consumers(S, "g")[0]:
        assert p.query(expr) == [], expr
    else:
        wait_for(lambda: p.query(expr), timeout=20, what=f"data for {expr}")


def test_prometheus_scrapes_the_consumers_and_the_producer(server, r, prometheus):
    url = server.url
    ports = {name: free_port() for name in ("c1", "c2", "producer", "admin")}
    target = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    p = prometheus(
        {
            "stream-pubsub-admin": target["admin"],
            "stream-pubsub-consumers": [target["c1"], target["c2"]],
            "stream-pubsub-producers": target["producer"],
        }
    )
    exporter = spawn("admin.py", "metrics", "--serve", target["admin"], url=url)
    g, c1, c2 = f'stream="{S}", group="g"', f'consumer="c1", instance="{target["c1"]}"', 'consumer="c2"'

    # c1 fails all 20 readings it gets; Prometheus sees it say so, then sees it go (killed)
    assert run("producer.py", "sensor1", "--count", "20", "-q", url=url).returncode == 0
    failing = spawn(
        "consumer.py", "g", "c1", "--start-from", "0", "--fail-rate", "1", "-q", "--metrics", target["c1"], url=url
    )
    wait_for(
        lambda: p.value(f'stream_pubsub_consumer_entries_total{{{g}, {c1}, outcome="failed"}}') == 20,
        timeout=30,
        what="c1's failures",
    )
    assert p.value(f'stream_pubsub_consumer_entries_total{{{g}, {c1}, outcome="processed"}}') == 0
    assert r.xinfo_groups(S)[0]["pending"] == 20
    stop(failing, signal.SIGKILL)
    not_live = f'ALERTS{{alertname="StreamConsumerNotLive", instance="{target["c1"]}"}}'
    wait_for(lambda: p.value(not_live) == 1, timeout=30, what="StreamConsumerNotLive for the killed consumer")

    # a poison reading, a producer publishing on, and c2, which claims c1's 20 after --claim-idle
    assert run("producer.py", "sensor2", "--field", "temp=hot", url=url).returncode == 0
    producer = spawn(
        "producer.py", "sensor3", "--count", "0", "--interval", "0.05", "-q", "--metrics", target["producer"], url=url
    )
    consumer = spawn("consumer.py", "g", "c2", "--claim-idle", "500", "-q", "--metrics", target["c2"], url=url)
    wait_for(
        lambda: p.value(f'stream_pubsub_consumer_entries_total{{{g}, {c2}, outcome="claimed"}}') == 20,
        timeout=30,
        what="c2 claiming c1's 20",
    )
    wait_for(
        lambda: p.value(f'stream_pubsub_consumer_entries_total{{{g}, {c2}, outcome="dead_lettered"}}') == 1,
        what="the poison",
    )
    assert r.xlen(DLQ) == 1
    wait_for(lambda: p.value(f'stream_pubsub_dead_letters{{stream="{S}"}}') == 1, what="admin.py's count of it")
    assert (
        p.value(f"stream_pubsub_consumer_live{{{g}, {c2}}}")
        == p.value(f"stream_pubsub_consumer_ready{{{g}, {c2}}}")
        == 1
    )
    info = r.info("server")
    server_name = info.get("server_name", "redis")
    assert p.value(f'stream_pubsub_server_info{{instance="{target["c2"]}"}}') == 1
    assert p.query(f'stream_pubsub_server_info{{server="{server_name}", version="{info[f"{server_name}_version"]}"}}')

    # every expression of the dashboard returns data, the consumers' and the producers' too (and, with
    # an entry someone read by hand in another group and never acknowledged, the oldest pending's age)
    r.xgroup_create(S, "audit", "0")
    r.xreadgroup("audit", "by-hand", {S: ">"}, count=1)
    exprs = all_dashboard_exprs()
    assert len(exprs) - len(server_side_dashboard_exprs()) >= 13
    for expr in exprs:
        returns_data(p, r, expr)

    # Writes paused: the producer's next XADD waits, so what it counted is what Redis holds
    r.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
    try:
        stored = lambda: sum(1 for _, f in r.xrange(S) if f[b"sensor_id"] == b"sensor3")  # noqa: E731
        sent = f'stream_pubsub_producer_sent_total{{stream="{S}", instance="{target["producer"]}"}}'
        wait_for(lambda: p.value(sent) == stored() > 0, timeout=4.5, what="the producer's count of what Redis holds")
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
    assert p.value(f'stream_pubsub_producer_not_confirmed_total{{stream="{S}"}}') == 0
    stop(producer)

    # Once c2 has read everything, its counts are what Redis holds: every entry added was processed
    # by c2 but the poison (c1 processed none), and acknowledged
    wait_for(lambda: (grp := group_g(r))["lag"] == 0 and grp["pending"] == 0, timeout=20, what="c2 done")
    added = r.xinfo_stream(S)["entries-added"]
    processed = f'stream_pubsub_consumer_entries_total{{{g}, outcome="processed"}}'
    wait_for(lambda: p.value(f"sum({processed})") == added - 1, timeout=20, what="c2's count of what it processed")
    me = f"{g}, {c2}"
    assert p.value(f"stream_pubsub_consumer_end_to_end_seconds_count{{{me}}}") == added - 1
    assert p.value(f"stream_pubsub_consumer_handler_seconds_count{{{me}}}") == added  # the poison too
    assert p.value(f"stream_pubsub_consumer_deliveries_count{{{me}}}") == added
    assert p.value(f"stream_pubsub_consumer_deliveries_sum{{{me}}}") == added + 20  # c1's 20 twice
    assert p.value(f"redis_stream_group_messages_pending{{{g}}}") == 0
    assert p.value(f'stream_pubsub_consumer_entries_total{{{me}, outcome="failed"}}') == 0
    stop(consumer)
    stop(exporter)
    assert consumer.returncode == 0


TRIMMED_OR_HUNG = """
import time


def process(message_id, message):
    time.sleep(3600 if message.get("hang") else 0.2)
"""


def test_the_consumers_alerts_fire_in_prometheus(server, r, prometheus, tmp_path):
    """Entries trimmed before the consumer read them (the consumer's half of StreamEntriesTrimmedUnread:
    no admin.py here), then a handler that hangs (StreamConsumerNotLive, from its /livez)."""
    port = free_port()
    p = prometheus({"stream-pubsub-consumers": f"127.0.0.1:{port}"})
    env = handlers(tmp_path, slow=TRIMMED_OR_HUNG)
    args = ("--start-from", "0", "--count", "1", "--handler", "slow:process", "--handler-timeout", "1000")
    consumer = spawn("consumer.py", "g", "c1", *args, "--metrics", f"127.0.0.1:{port}", url=server.url, env=env)
    me = f'stream="{S}", group="g", consumer="c1"'
    trimmed = f'stream_pubsub_consumer_entries_total{{{me}, outcome="trimmed"}}'
    wait_for(
        lambda: (p.value(f"count_over_time({trimmed}[1m])") or 0) >= 2, timeout=30, what="two scrapes of 0 trimmed"
    )
    assert p.value(trimmed) == 0

    # 50 readings at once into a stream capped at 5, while the handler takes 0.2 s each
    assert run("producer.py", "s1", "--count", "50", "--maxlen", "5", "--exact", "-q", url=server.url).returncode == 0
    wait_for(lambda: (p.value(trimmed) or 0) > 0, timeout=30, what="the trimmed entries counted")
    firing = 'ALERTS{alertname="StreamEntriesTrimmedUnread", alertstate="firing", group="g"}'
    wait_for(lambda: p.value(firing) == 1, timeout=30, what="StreamEntriesTrimmedUnread")
    processed = f'stream_pubsub_consumer_entries_total{{{me}, outcome="processed"}}'
    wait_for(lambda: p.value(processed) + p.value(trimmed) == 50, timeout=30, what="every reading read or trimmed")
    assert p.query('ALERTS{alertname="StreamConsumerNotLive"}') == []

    assert run("producer.py", "s1", "--field", "hang=1", url=server.url).returncode == 0
    wait_for(lambda: p.value(f"stream_pubsub_consumer_live{{{me}}}") == 0, timeout=30, what="live 0")
    pending = 'ALERTS{alertname="StreamConsumerNotLive", alertstate="pending", consumer="c1"}'
    wait_for(lambda: p.value(pending) == 1, timeout=30, what="StreamConsumerNotLive pending")
    stop(consumer, signal.SIGKILL)
