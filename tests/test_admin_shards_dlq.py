"""`admin.py dlq` on a sharded stream, on one node and on a Redis Cluster: the dead letters of every
shard's companion dead-letter stream, listed, shown, replayed to the shard they came from, purged.
"""

from __future__ import annotations

import re

from conftest import admin, admin_json, everything, id_order, sharded_stream

from stream_pubsub import shards
from stream_pubsub.dead_letters import dead_letter

S, N = "app:event", 12
KEYS = shards.keys(S, N)
DLQS = [shards.companion("app:event:dlq", i, N) for i in range(N)]


# -- dead letters --------------------------------------------------------------------------------
def test_dlq_list_show_replay_and_purge_across_shards(place):
    db = place.db
    ids = sharded_stream(db)
    dead = sorted(((db.xrange(DLQS[i])[0][0].decode(), i) for i in (0, 3, 6, 9)), key=lambda d: id_order(d[0]))
    listed = admin_json("dlq", "list", url=place.url)
    assert (listed["key"], listed["length"], listed["more"]) == ("app:event:dlq", 4, False)
    assert [(e["id"], e["key"], e["stream"], e["original_id"]) for e in listed["entries"]] == [
        (d, DLQS[i], KEYS[i], ids[i][0]) for d, i in dead
    ]
    got = admin("dlq", "list", "--count", "2", url=place.url)
    assert got.stdout.splitlines()[0] == "app:event:dlq (12 shards): 4 dead letters"
    assert re.search(rf"\n  {dead[1][0]} +{re.escape(KEYS[dead[1][1]])} {ids[dead[1][1]][0]} +g/c1 +5 +bad", got.stdout)
    assert got.stdout.endswith("  ... more not shown (raise --count above 2)\n")

    first, shard = dead[0]
    shown = admin_json("dlq", "show", first, url=place.url)
    assert (shown["key"], shown["stream"], shown["error"]) == (
        DLQS[shard],
        KEYS[shard],
        f"bad reading on shard {shard}",
    )

    got = admin("dlq", "replay", first, url=place.url)  # back on the shard it came from
    assert got.returncode == 0, got.stderr
    back = db.xrevrange(KEYS[shard], count=1)[0]
    assert got.stdout == f"replayed {first} (was {ids[shard][0]}) to {KEYS[shard]} as {back[0].decode()}\n"
    assert back[1] == {b"sensor_id": f"sensor{shard}".encode(), b"n": b"0"}
    assert db.xlen(DLQS[shard]) == 0

    lengths = {i: db.xlen(KEYS[i]) for i in range(N)}
    got = admin("dlq", "replay", "--all", "--shard", str(dead[1][1]), url=place.url)
    assert got.stderr == f"replayed 1 dead letter from {DLQS[dead[1][1]]}\n"
    got = admin("dlq", "replay", "--all", url=place.url)
    assert (got.returncode, got.stderr) == (0, "replayed 2 dead letters from app:event:dlq (12 shards)\n")
    for i in range(N):  # each went back to its own shard, nothing anywhere else
        assert db.xlen(KEYS[i]) == lengths[i] + (i in (dead[1][1], dead[2][1], dead[3][1]))
        assert db.xlen(DLQS[i]) == 0
    assert not any(k.startswith(b"dlq.") for key in KEYS for _, f in db.xrange(key) for k in f)

    for i in (1, 4, 4, 10):  # four more, two on shard 4; an entry is dead-lettered once, while pending
        fields = {"sensor_id": "s", "temp": "0.5", "humidity": "0.5"}
        entry_id = db.xadd(KEYS[i], fields)
        db.xreadgroup("g", "c1", {KEYS[i]: ">"})
        dead_letter(
            db,
            dlq=DLQS[i],
            stream=KEYS[i],
            group="g",
            consumer="c1",
            entry_id=entry_id,
            fields=fields,
            deliveries=6,
            error="again",
        )
    got = admin("dlq", "purge", url=place.url, input="n\n")
    assert got.returncode == 1 and "delete all 4 dead letters in app:event:dlq (12 shards) for good?" in got.stdout
    named = db.xrange(DLQS[10])[0][0].decode()
    got = admin("dlq", "purge", named, "--yes", "--shard", "10", url=place.url)  # IDs are per key: name the shard
    assert (got.returncode, got.stdout) == (0, f"deleted 1 dead letter from {DLQS[10]}\n")
    assert db.xlen(DLQS[10]) == 0 and db.xlen(DLQS[4]) == 2
    got = admin("dlq", "purge", "--yes", url=place.url)
    assert (got.returncode, got.stdout) == (0, "deleted 3 dead letters from app:event:dlq (12 shards)\n")
    assert sum(db.xlen(key) for key in DLQS) == 0
    got = admin("dlq", "show", named, url=place.url)
    assert (got.returncode, got.stderr) == (
        1,
        f"Error: no entry {named} in the dead-letter stream app:event:dlq (12 shards) "
        "(`admin.py dlq list` shows what is there)\n",
    )


def test_a_dead_letter_id_that_two_shards_hold_needs_shard(place):
    db = place.db
    db.set(shards.record_key(S), N)
    for i in (2, 7):
        db.xadd(DLQS[i], {"sensor_id": f"sensor{i}", "dlq.stream": KEYS[i], "dlq.id": "1-0"}, id="5-0")
    before = everything(db)
    for command in (["show", "5-0"], ["replay", "5-0"], ["purge", "5-0", "--yes"]):
        got = admin("dlq", *command, url=place.url)
        assert (got.returncode, got.stderr) == (
            1,
            "Error: 5-0 is in 2 dead-letter shards (2, 7): name one with --shard I\n",
        )
    assert everything(db) == before
    got = admin("dlq", "replay", "5-0", "--shard", "7", url=place.url)
    assert got.returncode == 0, got.stderr
    assert db.xlen(DLQS[7]) == 0 and db.xlen(DLQS[2]) == 1
    assert db.xrange(KEYS[7])[0][1] == {b"sensor_id": b"sensor7"}
