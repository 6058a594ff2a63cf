"""`admin.py pending`, `range` and `tail` on a sharded stream, on one node and on a Redis Cluster:
every shard merged, oldest (or lowest ID) first.
"""

from __future__ import annotations

import json
import signal

from conftest import admin, admin_json, id_order, read_lines, sharded_stream, spawn, stop

from stream_pubsub import shards

S, N = "app:event", 12
KEYS = shards.keys(S, N)


# -- the commands that read ----------------------------------------------------------------------
def test_pending_merges_every_shard_oldest_first(place):
    ids = sharded_stream(place.db)
    expected = [(ids[i][0], KEYS[i]) for i in range(N) if i % 3]  # c1's first entries, not dead-lettered
    expected.sort(key=lambda e: id_order(e[0]))
    doc = admin_json("pending", "g", url=place.url)
    assert (doc["stream"], doc["pending"], doc["consumers"]) == (S, 8, {"c1": 8})
    assert [(e["id"], e["stream"]) for e in doc["entries"]] == expected
    assert all(e["consumer"] == "c1" and e["deliveries"] == 1 and e["in_stream"] for e in doc["entries"])

    got = admin("pending", "g", "--count", "3", url=place.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "group g on app:event (12 shards): 8 pending entries (c1 8)"
    assert [line.split()[:3] for line in lines[2:5]] == [[i, key, "c1"] for i, key in expected[:3]]
    assert lines[-1] == "  ... more not shown (raise --count above 3)"
    got = admin("pending", "nope", url=place.url)
    assert (got.returncode, got.stderr) == (
        1,
        "Error: no group 'nope' on stream app:event (12 shards) (its groups: audit, g)\n",
    )
    got = admin("pending", "g", "--consumer", "c9", url=place.url)
    assert (got.returncode, got.stderr) == (1, "Error: no consumer 'c9' in group 'g' (its consumers: c1, c2)\n")


def test_range_merges_shards_in_id_order_with_count_and_reverse(place):
    db = place.db
    db.set(shards.record_key(S), N)
    added = []  # (id, shard): shard i gets IDs i+1, i+13, i+25 (interleaved), shards 0 and 5 also 100-0
    for n in range(3):
        for i in range(N):
            added.append((db.xadd(KEYS[i], {"n": n}, id=f"{i + 1 + 12 * n}-0").decode(), i))
    for i in (0, 5):
        added.append((db.xadd(KEYS[i], {"n": "tie"}, id="100-0").decode(), i))
    added.sort(key=lambda e: (id_order(e[0]), e[1]))

    doc = admin_json("range", "--count", "0", url=place.url)
    assert doc["more"] is False and [(e["id"], e["stream"]) for e in doc["entries"]] == [(i, KEYS[s]) for i, s in added]
    got = admin("range", "10", "15", url=place.url)
    assert got.stdout.splitlines() == [f"{i}-0 {KEYS[(i - 1) % 12]} n={(i - 1) // 12}" for i in range(10, 16)]
    doc = admin_json("range", "--reverse", "--count", "4", url=place.url)
    assert doc["more"] is True
    assert [(e["id"], e["stream"]) for e in doc["entries"]] == [
        ("100-0", KEYS[5]),
        ("100-0", KEYS[0]),
        ("36-0", KEYS[11]),
        ("35-0", KEYS[10]),
    ]
    got = admin("range", "30", "+", "--count", "8", url=place.url)  # cut between the two 100-0
    assert [line.split()[:2] for line in got.stdout.splitlines()] == [
        *[[f"{i}-0", KEYS[(i - 1) % 12]] for i in range(30, 37)],
        ["100-0", KEYS[0]],
    ]
    assert got.stderr == "(more entries follow: raise --count, or go on with `admin.py range 100-0 +`)\n"
    got = admin("range", "200", url=place.url)
    assert (got.returncode, got.stderr) == (0, "no entries in app:event (12 shards) between 200 and +\n")


def test_tail_follows_every_shard_until_ctrl_c(place):
    db = place.db
    ids = sharded_stream(db)
    tail = spawn("admin.py", "tail", "--block", "200", url=place.url)
    assert tail.stderr.readline() == "tail app:event (12 shards): entries after now (Ctrl-C to stop)\n"
    new = [(db.xadd(KEYS[i], {"sensor_id": f"new{i}"}).decode(), KEYS[i]) for i in (2, 9, 5, 11)]
    got = sorted(line.split()[:3] for line in read_lines(tail.stdout, 4))
    assert got == sorted([i, key, f"sensor_id=new{n}"] for (i, key), n in zip(new, (2, 9, 5, 11)))
    out, err = stop(tail, signal.SIGINT, timeout=5)
    assert (tail.returncode, out, err) == (0, "", "tail stopped after 4 entries\n")

    tail = spawn("admin.py", "tail", "--from", "0", "--json", url=place.url)
    seen = [json.loads(line) for line in read_lines(tail.stdout, 46)]
    assert sorted((e["stream"], e["id"]) for e in seen) == sorted(
        [(KEYS[i], x) for i in range(N) for x in ids[i]] + [(key, i) for i, key in new]
    )
    stop(tail, signal.SIGINT, timeout=5)
    assert tail.returncode == 0
