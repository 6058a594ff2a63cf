"""admin.py on a stream of a quarter of a million entries: counts that stop at a limit and say
"at least", long reads a page at a time and printed as they come (the admin process's peak
memory does not grow with what it prints), watch refreshing on time.

Each test fills its stream with pipelined XADDs (a second or two). Memory is the peak RSS of the
admin.py process alone (RUSAGE_CHILDREN of a small parent that runs nothing else).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

from conftest import ROOT, run, script_env, spawn, stop, write_dead_letters

from stream_pubsub.ids import COUNT_LIMIT, PAGE

S, DLQ = "app:event", "app:event:dlq"
BIG, SMALL = 200_000, 20_000

PEAK = """
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    done = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE, text=True)
sys.stderr.write(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(done.returncode)
"""


def fill(r, n: int, key: str = S) -> list[bytes]:
    """n readings, 10,000 XADDs per pipeline; their IDs."""
    ids = []
    for start in range(0, n, 10_000):
        with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 10_000, n)):
                pipe.xadd(key, {"sensor_id": f"sensor{i % 3 + 1}", "temp": "0.5", "humidity": f"0.{i}"})
            ids += pipe.execute()
    return ids


def peak(tmp_path, *args, url: str) -> tuple[int, str, str]:
    """Run admin.py: (its peak RSS in kB, its stdout, its stderr)."""
    out = tmp_path / "stdout.txt"
    got = subprocess.run(
        [sys.executable, "-c", PEAK, str(out), sys.executable, str(ROOT / "admin.py"), *map(str, args)],
        cwd=ROOT,
        env=script_env(url),
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert got.returncode == 0, got.stderr
    return int(got.stdout), out.read_text(), got.stderr


def test_info_counts_a_lag_the_server_cannot_tell_up_to_a_limit_and_says_at_least(r, server):
    ids = fill(r, 250_000)
    r.xgroup_create(S, "middle", id=ids[125_000 - 1])  # 125,000 unread
    r.xgroup_create(S, "early", id=ids[999])  # 249,000 unread
    r.xgroup_createconsumer(S, "middle", "c1")
    r.xgroup_createconsumer(S, "early", "c1")
    r.xdel(S, ids[200_000])  # inside both groups' unread entries: the server no longer counts their lag
    assert [g["lag"] for g in r.xinfo_groups(S)] == [None, None]

    doc = json.loads(run("admin.py", "info", "--json", url=server.url).stdout)
    early, middle = doc["groups"]
    # in the middle: the count stopped at the limit; it says so, and what it says is a lower bound
    assert (middle["name"], middle["lag_source"], middle["lag_at_least"]) == ("middle", "counted", True)
    assert PAGE <= middle["lag"] < 125_000 - 1 and middle["lag"] <= COUNT_LIMIT
    assert middle["trimmed_unread"] is None  # unknown: the count stopped before the end
    # near the start: the short side (1,000 read) is counted to the end, the rest is the length
    assert (early["name"], early["lag"], early["lag_at_least"]) == ("early", 249_000 - 1, False)
    assert early["trimmed_unread"] is None  # (created at an ID: the server does not know what it read)
    assert doc["warnings"] == []

    got = run("admin.py", "info", url=server.url)
    assert got.returncode == 0, got.stderr
    assert re.search(rf"\n  middle +1 +0 +{ids[124_999].decode()} +at least {middle['lag']} \(counted\)\n", got.stdout)
    assert re.search(rf"\n  early +1 +0 +{ids[999].decode()} +{249_000 - 1} \(counted\)\n", got.stdout)


def test_range_of_every_entry_is_read_a_page_at_a_time_in_flat_memory(r, server, tmp_path):
    ids = fill(r, BIG)
    small, out, err = peak(tmp_path, "range", "-", ids[SMALL - 1].decode(), "--count", 0, url=server.url)
    assert len(out.splitlines()) == SMALL and err == ""
    big, out, err = peak(tmp_path, "range", "--count", 0, url=server.url)
    assert big / small < 1.5, (big, small)  # all of it in memory at once would be several times more
    lines = out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [i.decode() for i in ids]  # all of them, in order
    expected = r.xrange(S, ids[150_000], ids[150_000])[0][1]
    assert lines[150_000].split(" ", 1)[1] == " ".join(f"{k.decode()}={v.decode()}" for k, v in expected.items())

    tail = ids[-2500:]  # --json over several pages, newest first: the same entries
    doc = json.loads(
        run("admin.py", "range", tail[0].decode(), "+", "--reverse", "--count", 0, "--json", url=server.url).stdout
    )
    assert [e["id"] for e in doc["entries"]] == [i.decode() for i in reversed(tail)] and doc["more"] is False
    assert doc["entries"][0]["fields"] == {
        k.decode(): v.decode() for k, v in r.xrange(S, tail[-1], tail[-1])[0][1].items()
    }

    got = run("admin.py", "range", "--count", 1500, url=server.url)  # a count over a page: exactly that many
    assert [line.split(" ", 1)[0] for line in got.stdout.splitlines()] == [i.decode() for i in ids[:1500]]
    assert (
        got.stderr
        == f"(more entries follow: raise --count, or go on with `admin.py range '({ids[1499].decode()}' +`)\n"
    )


def test_dlq_list_and_replay_all_page_through_in_flat_memory(r, server, tmp_path):
    many, few = BIG // 2, SMALL // 2  # 100,000 and 10,000: a dead letter is bigger than a reading
    write_dead_letters(r, many)
    small, out, _ = peak(tmp_path, "dlq", "list", "--count", few, url=server.url)
    assert len(out.splitlines()) == 1 + 1 + few + 1  # the title, the header, the rows, "... more not shown"
    big, out, _ = peak(tmp_path, "dlq", "list", "--count", many, url=server.url)
    assert big / small < 1.5, (big, small)
    lines = out.splitlines()
    assert lines[0] == f"app:event:dlq: {many} dead letters" and len(lines) == 2 + many
    assert [line.split()[0] for line in lines[2:]] == [i.decode() for i, _ in r.xrange(DLQ)]  # oldest first, all

    r.xtrim(DLQ, maxlen=few, approximate=False)  # replay --all: 10,000, then 50,000
    small, out, err = peak(tmp_path, "dlq", "replay", "--all", url=server.url)
    assert err == f"replayed {few} dead letters from app:event:dlq\n" and r.xlen(DLQ) == 0
    r.delete(S)
    write_dead_letters(r, many // 2)
    big, out, err = peak(tmp_path, "dlq", "replay", "--all", url=server.url)
    assert big / small < 1.5, (big, small)
    assert err == f"replayed {many // 2} dead letters from app:event:dlq\n" and len(out.splitlines()) == many // 2
    assert r.xlen(DLQ) == 0 and sorted(int(f[b"n"]) for _, f in r.xrange(S)) == list(range(many // 2))


def test_pending_pages_through_a_long_pending_list_in_flat_memory(r, server, tmp_path):
    ids = fill(r, BIG // 2)
    r.xgroup_create(S, "g", id="0")
    r.xreadgroup("g", "c1", {S: ">"}, count=BIG // 2 - 500)
    r.xreadgroup("g", "c2", {S: ">"}, count=500)
    r.xdel(S, ids[2999])  # one whose data is gone, on the third page: marked at the end of its row
    small, out, _ = peak(tmp_path, "pending", "g", "--count", SMALL // 2, url=server.url)
    big, out, _ = peak(tmp_path, "pending", "g", "--count", BIG // 2, url=server.url)
    assert big / small < 1.5, (big, small)
    lines = out.splitlines()
    assert lines[0] == f"group g on app:event: {BIG // 2} pending entries (c1 {BIG // 2 - 500}, c2 500)"
    rows = lines[2:]
    assert [row.split()[0] for row in rows] == [i.decode() for i in ids]
    assert rows[2999].endswith("trimmed away") and sum("trimmed away" in row for row in rows) == 1

    got = run("admin.py", "pending", "g", "--count", 3200, url=server.url)
    assert got.stdout.splitlines()[-1] == "  ... more not shown (raise --count above 3200)"
    assert len(got.stdout.splitlines()) == 2 + 3200 + 1
    doc = json.loads(
        run("admin.py", "pending", "g", "--consumer", "c2", "--json", "--count", 3200, url=server.url).stdout
    )
    assert [e["id"] for e in doc["entries"]] == [i.decode() for i in ids[-500:]] and doc["more"] is False


def test_watch_refreshes_on_time_on_a_big_stream_after_an_xdel(r, server):
    ids = fill(r, 250_000)
    for n in range(4):  # groups far behind; the XDEL leaves each one's lag to be counted at every refresh
        r.xgroup_create(S, f"g{n}", id=ids[n * 1000])
        r.xgroup_createconsumer(S, f"g{n}", "c1")
    r.xgroup_create(S, "middle", id=ids[125_000])
    r.xgroup_createconsumer(S, "middle", "c1")
    r.xdel(S, ids[200_000])
    watch = spawn("admin.py", "watch", "--interval", 1, "--json", url=server.url)
    first = json.loads(watch.stdout.readline())  # (starting up is not what is measured)
    assert [g["lag_at_least"] for g in first["groups"]] == [False] * 4 + [True]
    started, seen = time.monotonic(), 0
    while time.monotonic() - started < 6:
        json.loads(watch.stdout.readline())
        seen += 1
    stop(watch, signal.SIGINT)
    assert watch.returncode == 0
    assert seen >= 3, f"{seen} refreshes in 6 s with --interval 1"
