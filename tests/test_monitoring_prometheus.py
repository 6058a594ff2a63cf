"""A real Prometheus (Debian's `prometheus` package; .ci/run installs it) scrapes
`admin.py metrics --serve` after a scenario the scripts play for real: a consumer that fails
every reading and is killed holding them, a poison reading dead-lettered, a backlog. Queried
through its HTTP API, it returns the numbers Redis holds; every dashboard expression on these
metrics returns data; the dead-letter alert of monitoring/alerts.yml fires.

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
from conftest import run, spawn, stop, wait_for
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
    def __init__(self, folder, targets: dict[str, str]):
        self.port = free_port()
        jobs = [{"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()]
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
