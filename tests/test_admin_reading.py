"""`admin.py range | tail | watch`: the stream read without a group, history and new entries, and a
live view that carries on when Redis comes back.
"""

from __future__ import annotations

import json
import signal

import redis
from conftest import admin, admin_json, read_lines, reading, spawn, stop, wait_for

S = "app:event"


# -- reading without a group ---------------------------------------------------------------------
def test_range_reads_history_in_both_directions(r, server):
    ids = [r.xadd(S, reading(i)).decode() for i in range(5)]
    odd = r.xadd(S, {"sensor_id": b"\xff", "temp": "1"}).decode()

    got = admin("range", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == [
        f"{i} sensor_id=sensor{n % 3 + 1} temp=0.5 humidity=0.{n}" for n, i in enumerate(ids)
    ] + [f"{odd} sensor_id=\\xff temp=1"]
    got = admin("range", ids[1], ids[3], url=server.url)
    assert [line.split()[0] for line in got.stdout.splitlines()] == ids[1:4]
    got = admin("range", f"({ids[1]}", "+", "--count", "2", url=server.url)
    assert [line.split()[0] for line in got.stdout.splitlines()] == ids[2:4]
    assert got.stderr == f"(more entries follow: raise --count, or go on with `admin.py range '({ids[3]}' +`)\n"

    doc = admin_json("range", "--reverse", "--count", "2", url=server.url)
    assert doc == {
        "stream": S,
        "more": True,
        "entries": [
            {"id": odd, "fields": {"sensor_id": "\\xff", "temp": "1"}},
            {"id": ids[4], "fields": {"sensor_id": "sensor2", "temp": "0.5", "humidity": "0.4"}},
        ],
    }
    assert admin_json("range", "--count", "0", url=server.url)["more"] is False

    got = admin("range", "yesterday", url=server.url)
    assert got.returncode == 2 and "'yesterday': use - (the oldest)" in got.stderr


def test_tail_shows_every_new_entry_to_every_reader_until_ctrl_c(r, server):
    old = r.xadd(S, reading(0)).decode()
    tails = [spawn("admin.py", "tail", "--block", "200", url=server.url) for _ in range(2)]
    for tail in tails:
        assert tail.stderr.readline() == f"tail app:event: entries after {old} (Ctrl-C to stop)\n"
    new = [r.xadd(S, reading(i)).decode() for i in range(1, 4)]
    for tail in tails:  # both see all three: XREAD has no group sharing the work
        assert [line.split()[0] for line in read_lines(tail.stdout, 3)] == new
        out, err = stop(tail, signal.SIGINT, timeout=5)
        assert tail.returncode == 0
        assert (out, err) == ("", "tail stopped after 3 entries\n")

    tail = spawn("admin.py", "tail", "--from", "0", "--json", url=server.url)
    assert [json.loads(line)["id"] for line in read_lines(tail.stdout, 4)] == [old, *new]
    stop(tail, signal.SIGINT, timeout=5)
    assert tail.returncode == 0
    assert admin("tail", "--from", "latest", url=server.url).returncode == 2


def test_watch_refreshes_with_rates_until_ctrl_c(r, server):
    r.xgroup_create(S, "g", id="0", mkstream=True)
    watch = spawn("admin.py", "watch", "--json", "--interval", "0.2", url=server.url)
    first = json.loads(watch.stdout.readline())
    assert first["rates"] == {"seconds": None, "added_per_s": None, "acknowledged_per_s": {}}
    assert set(first) == {"stream", "groups", "dead_letters", "warnings", "rates"}
    ids = [r.xadd(S, reading(i)) for i in range(20)]
    r.xreadgroup("g", "c1", {S: ">"}, count=20)
    r.xack(S, "g", *ids)

    seen = {"added": 0.0, "acknowledged": 0.0}

    def rates_seen():  # the adds and the acks may fall on either side of a refresh
        rates = json.loads(watch.stdout.readline())["rates"]
        seen["added"] += rates["added_per_s"] * rates["seconds"]
        seen["acknowledged"] += rates["acknowledged_per_s"]["g"] * rates["seconds"]
        return round(seen["added"]) == 20 and round(seen["acknowledged"]) == 20

    wait_for(rates_seen, timeout=5, what="rates adding up to 20 added and 20 acknowledged")
    stop(watch, signal.SIGINT, timeout=5)
    assert watch.returncode == 0

    watch = spawn("admin.py", "watch", "--interval", "0.2", url=server.url)
    wait_for(lambda: "ACKED/S" in watch.stdout.readline(), timeout=5, what="the groups table")
    out, err = stop(watch, signal.SIGINT, timeout=5)
    assert (watch.returncode, err) == (0, "")


def test_tail_and_watch_carry_on_when_redis_comes_back(own_server):
    server = own_server()
    client = redis.Redis.from_url(server.url)
    first = client.xadd(S, reading(0)).decode()
    tail = spawn("admin.py", "tail", "--block", "200", url=server.url)
    watch = spawn("admin.py", "watch", "--json", "--interval", "0.2", url=server.url)
    assert tail.stderr.readline() == f"tail app:event: entries after {first} (Ctrl-C to stop)\n"
    assert json.loads(watch.stdout.readline())["stream"]["length"] == 1

    server.kill()
    said = {}
    for process in (tail, watch):  # each notices before Redis is back
        said[process] = ""
        while "lost Redis at 127.0.0.1" not in said[process]:
            line = process.stderr.readline()
            assert line, said[process]
            said[process] += line
    server.start()  # same port, empty (no persistence)
    later = client.xadd(S, reading(1)).decode()
    assert tail.stdout.readline().split()[0] == later  # nothing after the last one shown is missed
    wait_for(
        lambda: json.loads(watch.stdout.readline())["stream"]["first_id"] == later,
        timeout=5,
        what="watch to show the new stream",
    )
    for process in (tail, watch):
        out, err = stop(process, signal.SIGINT, timeout=5)
        err = said[process] + err
        assert process.returncode == 0
        assert "lost Redis at 127.0.0.1" in err and "reconnected to 127.0.0.1" in err
