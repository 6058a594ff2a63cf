"""The consumer's own view: a status line every --stats-interval seconds, the same counts on exit."""

from __future__ import annotations

import re
import time

from conftest import spawn, stop, wait_for

S = "app:event"
STATUS = re.compile(
    r"^c1: processed (\d+), failed (\d+), claimed (\d+), dead-lettered (\d+), .*, "
    r"(\d+)/s, group lag (\d+|unknown)$",
    re.M,
)


def test_status_line_every_interval_and_the_same_counts_on_exit(r, server, tmp_path):
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        consumer = spawn(
            "consumer.py", "group1", "c1", "-q", "--block", "100", "--stats-interval", "0.3", url=server.url, stderr=err
        )
    wait_for(lambda: r.exists(S) and r.xinfo_groups(S), timeout=10, what="the group")
    for i in range(4):
        r.xadd(S, {"sensor_id": f"sensor{i}", "temp": "0.5", "humidity": "0.5"})
    r.xadd(S, {"sensor_id": "sensor9", "temp": "hot", "humidity": "0.5"})  # invalid: dead-lettered

    def status():  # processed, failed, claimed, dead-lettered, (rate), group lag
        lines = STATUS.findall(log.read_text())
        return bool(lines) and lines[-1][:4] == ("4", "0", "0", "1") and lines[-1][5] == "0"

    wait_for(status, timeout=10, what="a status line: processed 4, dead-lettered 1, group lag 0")
    stop(consumer)
    assert consumer.returncode == 0
    summary = log.read_text().splitlines()[-1]
    assert re.fullmatch(r"c1: stopped after [\d.]+s: processed 4, failed 0, claimed 0, dead-lettered 1, .*", summary), (
        summary
    )


def test_stats_interval_0_prints_no_status_line(r, server, tmp_path):
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        consumer = spawn(
            "consumer.py", "group1", "c1", "-q", "--block", "100", "--stats-interval", "0", url=server.url, stderr=err
        )
    wait_for(lambda: r.exists(S) and r.xinfo_groups(S), timeout=10, what="the group")
    r.xadd(S, {"sensor_id": "sensor1", "temp": "0.5", "humidity": "0.5"})
    wait_for(
        lambda: r.xinfo_groups(S)[0]["pending"] == 0 and r.xinfo_groups(S)[0]["entries-read"],
        timeout=10,
        what="the reading processed",
    )
    time.sleep(0.5)
    stop(consumer)
    assert consumer.returncode == 0
    assert not STATUS.search(log.read_text())
    assert "processed 1, failed 0" in log.read_text().splitlines()[-1]
