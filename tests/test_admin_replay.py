"""`admin.py dlq replay --all` stopped by Ctrl-C half-way: every dead letter is either back on its
stream or still a dead letter, never both and never neither; it says how far it got (exit 130),
and a second run replays the rest.

On one node and on a cluster the XADD back and the XDEL go in one MULTI/EXEC (the default
dead-letter key shares the stream's slot); on a cluster with a dead-letter key in another slot
they cannot, and Ctrl-C waits for the pair in hand.
"""

from __future__ import annotations

import signal

from conftest import spawn, wait_for, write_dead_letters
from redis.cluster import RedisCluster

from stream_pubsub import shards

S = "app:event"


def interrupt_replay(db, url: str, dlq: str, n: int, tmp_path, *options: str) -> None:
    """Replay n dead letters, Ctrl-C once some are back; check what it said and what Redis holds."""
    write_dead_letters(db, n, dlq)
    with open(tmp_path / "replayed.txt", "w") as out:
        replay = spawn("admin.py", "dlq", "replay", "--all", *options, url=url, stdout=out)
        wait_for(lambda: db.xlen(S) >= n // 50, timeout=60, what="the first dead letters back on the stream")
        replay.send_signal(signal.SIGINT)
        _, err = replay.communicate(timeout=60)
    back, left = db.xlen(S), db.xlen(dlq)
    assert 0 < left < n, "the replay was not stopped half-way"
    assert replay.returncode == 130, err
    assert err.splitlines() == [
        f"interrupted: replayed {back} dead letters from {dlq}; {left} remain there "
        "(none is in both places; `admin.py dlq replay --all` replays the rest)"
    ]
    assert len((tmp_path / "replayed.txt").read_text().splitlines()) == back  # a line for each, none for others
    on_stream = [f[b"n"] for _, f in db.xrange(S)]
    still_dead = [f[b"n"] for _, f in db.xrange(dlq)]
    assert back + left == n and not set(on_stream) & set(still_dead)
    assert sorted(map(int, on_stream + still_dead)) == list(range(n))  # each exactly once, in one place

    with open(tmp_path / "rest.txt", "w") as out:
        replay = spawn("admin.py", "dlq", "replay", "--all", *options, url=url, stdout=out)
        _, err = replay.communicate(timeout=120)
    assert (replay.returncode, err) == (0, f"replayed {left} dead letters from {dlq}\n")
    assert db.xlen(dlq) == 0 and sorted(int(f[b"n"]) for _, f in db.xrange(S)) == list(range(n))


def test_ctrl_c_stops_replay_between_two_transactions(place, tmp_path):
    url, db, dlq = place.url, place.db, place.dlq
    interrupt_replay(db, url, dlq, 50_000, tmp_path)


def test_ctrl_c_waits_for_the_pair_in_hand_when_the_keys_cannot_share_a_transaction(cluster, tmp_path):
    dlq = "other:dlq"  # not in app:event's slot: no MULTI/EXEC with both keys on a cluster
    assert shards.slot(dlq) != shards.slot(S)
    db = RedisCluster.from_url(cluster.url)
    try:
        interrupt_replay(db, cluster.nodes[0].url, dlq, 5000, tmp_path, "--dead-letter", dlq)
    finally:
        db.close()
