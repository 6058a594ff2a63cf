"""`admin.py trim` and `cleanup` on a sharded stream, on one node and on a Redis Cluster: each
shard's groups decide for that shard.
"""

from __future__ import annotations

import time

from conftest import admin, sharded_stream

from stream_pubsub import shards

S, N = "app:event", 12
KEYS = shards.keys(S, N)


# -- upkeep --------------------------------------------------------------------------------------
def test_trim_safe_keeps_per_shard_what_a_group_still_needs(place):
    db = place.db
    ids = sharded_stream(db)  # shard i: i % 4 + 2 entries; g: the first pending (or dead-lettered), the second acked
    got = admin("trim", "--maxlen", "1", "--safe", url=place.url)
    assert got.returncode == 0, got.stderr
    for i in range(N):  # audit (even shards) has read nothing: keeps all; g keeps from its first still needed
        needed = 0 if i % 2 == 0 else (0 if i % 3 else 2)
        assert [x.decode() for x, _ in db.xrange(KEYS[i])] == ids[i][needed:], i
    lines = got.stdout.splitlines()
    assert lines[-1] == "removed 4 entries from app:event (12 shards) in all; 38 left"
    said = {line: lines[n + 1] if n + 1 < len(lines) else None for n, line in enumerate(lines)}
    assert said[f"removed 0 entries from {KEYS[0]}; 2 left"] == (
        "kept 1 entry that --maxlen 1 would have removed, because group audit has not read 1"
    )
    assert said[f"removed 2 entries from {KEYS[3]}; 3 left"] == (
        "kept 2 entries that --maxlen 1 would have removed, because group g has not read 2"
    )
    assert said[f"removed 0 entries from {KEYS[7]}; 5 left"] == (
        "kept 4 entries that --maxlen 1 would have removed, because group g has not read 2 and not acknowledged 1"
    )
    assert said[f"removed 2 entries from {KEYS[9]}; 1 left"] == f"removed 0 entries from {KEYS[10]}; 4 left"
    assert got.stderr == ""

    got = admin("trim", "--maxlen", "1", "--shard", "1", url=place.url)  # without --safe: says what g lost
    assert (got.returncode, got.stdout) == (0, f"removed 2 entries from {KEYS[1]}; 1 left\n")
    assert got.stderr == (
        f"warning: of the entries removed from {KEYS[1]}, group g had not acknowledged 1 (--safe keeps such entries)\n"
    )
    assert db.xlen(KEYS[1]) == 1 and db.xlen(KEYS[5]) == 3


def test_cleanup_works_on_each_shards_group(place):
    db = place.db
    sharded_stream(db)  # c1 holds one pending entry on the shards not dead-lettered; c2 none
    for key in KEYS:
        db.xgroup_createconsumer(key, "g", "live")
    got = admin("cleanup", "g", "--idle", "60000", url=place.url)
    assert (
        got.stdout
        == "group g on app:event (12 shards), counted per shard: removed 0 consumers, kept 0; 36 active left alone\n"
    )
    time.sleep(2.0)
    for key in KEYS:
        db.xgroup_createconsumer(key, "g", "fresh")
    # --idle leaves 1.5 s for admin.py to start and reach the last shard: "fresh" must not pass for idle.
    got = admin("cleanup", "g", "--idle", "1500", "--claim-to", "fresh", url=place.url)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert (
        lines[-1]
        == "group g on app:event (12 shards), counted per shard: removed 36 consumers, kept 0; 12 active left alone"
    )
    assert (
        sum(line.startswith("removed c1 on ") and "its 1 pending entry handed to fresh first" in line for line in lines)
        == 8
    )
    for i, key in enumerate(KEYS):
        assert [c["name"] for c in db.xinfo_consumers(key, "g")] == [b"fresh"]
        pending = db.xpending_range(key, "g", "-", "+", 10)
        assert [p["consumer"] for p in pending] == ([] if i % 3 == 0 else [b"fresh"])
