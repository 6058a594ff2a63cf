"""stream_pubsub/shards.py's naming and routing on their own: the shard keys, their slots, the
shard of a sensor, the companion keys. These names are data: a change here would leave every
sharded stream already in Redis behind, so the tests pin the values themselves.
"""

from __future__ import annotations

from collections import Counter

import pytest

from stream_pubsub import shards
from stream_pubsub.local_cluster import slot_ranges

TWELVE = [
    "app:event:{shard0-63}",
    "app:event:{shard1-33}",
    "app:event:{shard2-61}",
    "app:event:{shard3-0}",
    "app:event:{shard4-0}",
    "app:event:{shard5-61}",
    "app:event:{shard6-52}",
    "app:event:{shard7-11}",
    "app:event:{shard8-10}",
    "app:event:{shard9-63}",
    "app:event:{shard10-40}",
    "app:event:{shard11-1}",
]
# CLUSTER KEYSLOT of each (test_admin_shards_info.py checks shards.slot against a real cluster)
SLOTS = [509, 2236, 3287, 4684, 6108, 7674, 8982, 10501, 11722, 12938, 14599, 16000]


def test_twelve_shards_are_named_and_placed_as_before():
    assert shards.keys("app:event", 12) == TWELVE
    assert [shards.tag(i, 12) for i in range(12)] == [key[len("app:event:{") : -1] for key in TWELVE]
    assert [shards.slot(key) for key in TWELVE] == SLOTS


def test_twelve_shards_spread_four_to_each_of_three_equal_slot_ranges():
    """The even layout of redis-cli (and `make cluster`): 12 shards are 4 per master, where
    `{app:event:0}`..`{app:event:11}` would be 3/3/6."""
    ranges = slot_ranges(3)
    assert ranges == [(0, 5460), (5461, 10922), (10923, 16383)]

    def spread(keys):
        return sorted(
            Counter(
                next(i for i, (low, high) in enumerate(ranges) if low <= shards.slot(k) <= high) for k in keys
            ).values()
        )

    assert spread(shards.keys("app:event", 12)) == [4, 4, 4]
    assert spread([f"{{app:event:{i}}}" for i in range(12)]) == [3, 3, 6]  # why the tags are chosen
    for n in (3, 6, 24):
        assert spread(shards.keys("app:event", n)) == [n // 3] * 3, n


@pytest.mark.parametrize("n", [2, 3, 5, 12, 16, 256])
def test_each_shards_slot_lies_in_the_middle_half_of_its_part(n):
    part = 16384 / n
    for i, key in enumerate(shards.keys("app:event", n)):
        assert part * i + part / 4 <= shards.slot(key) < max(part * i + part * 3 / 4, part * i + part / 4 + 1), (i, key)


def test_the_tags_do_not_depend_on_the_streams_name():
    """Shard i of every logical stream of N shards is in one slot: its dead letters and its fan-out
    can be written with its XACK in one transaction."""
    for i, key in enumerate(shards.keys("app:event", 12)):
        assert shards.slot(shards.keys("anything", 12)[i]) == shards.slot(key)
        assert shards.companion("app:event:dlq", i, 12) == "app:event:dlq:" + key[len("app:event:") :]
        assert shards.slot(shards.companion("app:alerts", i, 12)) == SLOTS[i]


def test_one_shard_is_the_key_itself():
    assert shards.keys("app:event", 1) == ["app:event"]
    assert shards.companion("app:event:dlq", 0, 1) == "app:event:dlq"
    assert shards.route("sensor1", 1) == 0


def test_a_sensor_goes_to_the_same_shard_in_every_process_for_ever():
    """CRC-32 of the sensor's name, not Python's hash() (which changes with every process)."""
    assert {s: shards.route(s, 12) for s in ("sensor1", "sensor2", "sensor3", "Zürich-3", "")} == {
        "sensor1": 8,
        "sensor2": 2,
        "sensor3": 8,
        "Zürich-3": 0,
        "": 0,
    }
    assert [shards.route(f"sensor{i}", 6) for i in range(1, 7)] == [2, 2, 2, 3, 3, 3]
    assert sorted(Counter(shards.route(f"sensor{i}", 12) for i in range(1200)).values())[0] > 50  # all used


@pytest.mark.parametrize(
    "key, tagged",
    [
        ("app:event", False),
        ("{app:event}:dlq", True),
        ("app:event:{shard3-0}", True),
        ("a}b{c}", True),  # the first { and the next } after it
        ("app:{}:event", False),  # an empty tag: Redis hashes the whole key
        ("{}{app}", False),  # ... even with a tag after it
        ("app:{event", False),
    ],
)
def test_has_hash_tag_as_redis_reads_one(key, tagged):
    assert shards.has_hash_tag(key) is tagged


def test_the_default_dead_letter_key_shares_the_streams_slot_on_a_cluster():
    assert shards.default_dead_letters("app:event", cluster=False) == "app:event:dlq"
    assert shards.default_dead_letters("app:event", cluster=True) == "{app:event}:dlq"
    assert shards.slot("{app:event}:dlq") == shards.slot("app:event") == 14127  # app:event:dlq is 10515
    assert shards.slot("app:event:dlq") == 10515
    assert shards.default_dead_letters("app:{plant1}", cluster=True) == "app:{plant1}:dlq"  # tagged already
    assert shards.record_key("app:event") == "app:event:shards"
