"""monitoring/: the Prometheus configuration, the alerts and the dashboard, checked by the real
promtool (Debian's `prometheus` package; .ci/run installs it) and against the metric names.

Each alert has unit tests in monitoring/alerts.test.yml (it fires in its scenario, stays quiet in
a healthy one); here, each alert's tests are also shown to fail when the alert never fires and
when it always fires, so none of them passes by accident.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from ruamel.yaml import YAML

from stream_pubsub import metric_names

MONITORING = ROOT / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)"
)
# A metric name in PromQL: ours, redis_exporter's, or Prometheus's own `up`.
NAME = re.compile(r"\b(?:redis_stream_\w+|stream_pubsub_\w+|redis_up|up)\b(?=\s*[{\[)\s]|$)")
KNOWN = {
    metric.name + suffix
    for metric in (*metric_names.SERVER_SIDE, *metric_names.CONSUMER_SIDE, *metric_names.PRODUCER_SIDE)
    for suffix in (("_bucket", "_sum", "_count") if metric.kind == "histogram" else ("",))
} | {"up"}


def promtool(*args, cwd=MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def load(name: str):
    return YAML(typ="safe").load((MONITORING / name).read_text())


def alert_rules() -> list[dict]:
    return [rule for group in load("alerts.yml")["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


# -- promtool ----------------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_the_configuration_and_its_rules():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout  # it loaded alerts.yml through rule_files
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_promtool_refuses_a_broken_rule(tmp_path):
    """The check above can fail: a PromQL typo is refused."""
    broken = (MONITORING / "alerts.yml").read_text().replace("deriv(redis_stream_group_lag[10m])", "deriv(lag[10m]")
    (tmp_path / "alerts.yml").write_text(broken)
    checked = promtool("check", "rules", "alerts.yml", cwd=tmp_path)
    assert checked.returncode != 0 and "parse error" in checked.stdout + checked.stderr


@needs_promtool
def test_every_alert_fires_in_its_scenario_and_stays_quiet_in_a_healthy_one():
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    cases = [case for test in load("alerts.test.yml")["tests"] for case in test["alert_rule_test"]]
    names = {rule["alert"] for rule in alert_rules()}
    assert {case["alertname"] for case in cases if case["exp_alerts"]} == names  # each fires somewhere
    assert {case["alertname"] for case in cases if not case["exp_alerts"]} == names  # and is quiet somewhere


@needs_promtool
@pytest.mark.parametrize("alert", [rule["alert"] for rule in alert_rules()])
@pytest.mark.parametrize("broken", ["never fires", "always fires"])
def test_the_unit_tests_catch_an_alert_that_never_or_always_fires(alert, broken, tmp_path):
    document = load("alerts.yml")
    for rule in document["groups"][0]["rules"]:
        if rule["alert"] == alert:
            rule["expr"] = "vector(1) > 2" if broken == "never fires" else 'label_replace(vector(1), "x", "", "", "")'
    YAML(typ="safe").dump(document, tmp_path / "alerts.yml")
    shutil.copy(MONITORING / "alerts.test.yml", tmp_path)
    tested = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode != 0, f"the unit tests pass with {alert} broken ({broken})"
    assert alert in tested.stdout + tested.stderr


# -- names ---------------------------------------------------------------------------------------
def test_alerts_and_dashboard_use_only_metrics_that_are_exported():
    """A misspelt metric never fires and never draws: every name used is one metric_names.py defines."""
    used = {name for rule in alert_rules() for name in NAME.findall(rule["expr"])}
    used |= {name for expr in dashboard_exprs() for name in NAME.findall(expr)}
    assert used - KNOWN == set()
    assert "redis_stream_group_lag" in used and "stream_pubsub_consumer_end_to_end_seconds_bucket" in used
    assert NAME.findall("rate(stream_pubsub_consumer_entris_total[5m])") == ["stream_pubsub_consumer_entris_total"]
    assert "stream_pubsub_consumer_entris_total" not in KNOWN


def test_every_alert_says_what_to_do():
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "python admin.py " in rule["annotations"]["description"], rule["alert"]


def test_redis_exporter_names_labels_and_types_where_it_has_the_data():
    """The names, types and labels of redis_exporter's --check-streams (exporter/streams.go)."""
    theirs = {
        "redis_stream_length": ("gauge", ("db", "stream")),
        "redis_stream_radix_tree_keys": ("gauge", ("db", "stream")),
        "redis_stream_radix_tree_nodes": ("gauge", ("db", "stream")),
        "redis_stream_groups": ("gauge", ("db", "stream")),
        "redis_stream_first_entry_id": ("gauge", ("db", "stream")),
        "redis_stream_last_entry_id": ("gauge", ("db", "stream")),
        "redis_stream_last_generated_id": ("gauge", ("db", "stream")),
        "redis_stream_max_deleted_entry_id": ("gauge", ("db", "stream")),
        "redis_stream_entries_added_total": ("counter", ("db", "stream")),
        "redis_stream_group_consumers": ("gauge", ("db", "stream", "group")),
        "redis_stream_group_messages_pending": ("gauge", ("db", "stream", "group")),
        "redis_stream_group_last_delivered_id": ("gauge", ("db", "stream", "group")),
        "redis_stream_group_entries_read": ("gauge", ("db", "stream", "group")),
        "redis_stream_group_lag": ("gauge", ("db", "stream", "group")),
        "redis_stream_group_consumer_messages_pending": ("gauge", ("db", "stream", "group", "consumer")),
        "redis_stream_group_consumer_idle_seconds": ("gauge", ("db", "stream", "group", "consumer")),
    }
    ours = {m.name: (m.kind, m.labels) for m in metric_names.SERVER_SIDE if m.name.startswith("redis_stream_")}
    assert ours == theirs
    added = [m for m in metric_names.SERVER_SIDE if not m.name.startswith("redis_")]
    assert all(m.name.startswith(metric_names.PREFIX) for m in added)


def test_metric_names_imports_no_prometheus_client():
    """The consumer imports the names at start-up: they must not cost prometheus_client's import."""
    code = "import sys, stream_pubsub.metric_names; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# -- the configuration and the dashboard -------------------------------------------------------------
def test_prometheus_scrapes_what_docker_compose_runs():
    config, compose = load("prometheus.yml"), YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"stream-pubsub-admin", "stream-pubsub-consumers", "stream-pubsub-producers"}
    (target,) = jobs["stream-pubsub-admin"]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert compose["services"][host]["command"][-2:] == ["--serve", f":{port}"]
    for job, service in (("stream-pubsub-consumers", "consumer"), ("stream-pubsub-producers", "producer")):
        assert jobs[job]["dns_sd_configs"][0]["names"] == [service] and service in compose["services"]
    alerts = {rule["expr"] for rule in alert_rules()}
    assert any('job="stream-pubsub-consumers"' in expr for expr in alerts)
    assert any('job="stream-pubsub-admin"' in expr for expr in alerts)


def test_compose_loads_every_monitoring_file_it_names():
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    files = {config["file"] for config in compose["configs"].values()}
    assert {f"./monitoring/{name}" for name in ("prometheus.yml", "alerts.yml", "grafana-dashboard.json")} <= files
    for name in files:
        assert (ROOT / name).is_file(), name
    provider = YAML(typ="safe").load((MONITORING / "grafana" / "dashboards.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    targets = [c["target"] for c in compose["services"]["grafana"]["configs"]]
    assert f"{folder}/stream-pubsub.json" in targets
    assert any(t.startswith("/etc/grafana/provisioning/datasources/") for t in targets)


def test_the_dashboard_shows_what_the_issue_asks_for():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    titles = " / ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in (
        "lag",
        "acknowledged per second",
        "pending",
        "oldest pending",
        "dead letters",
        "end-to-end",
        "handler",
    ):
        assert wanted in titles, wanted
    exprs = " ".join(dashboard_exprs())
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "stream"}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
