"""stream_pubsub/admin/totals.py and output.duration on their own: a sharded stream's info document
as the sum of its shards' documents (built by hand here; test_admin_shards_info.py checks them on
a real cluster), and a time span as admin.py says it."""

from __future__ import annotations

import pytest

from stream_pubsub.admin.output import duration
from stream_pubsub.admin.totals import combine


def stream(key, length, first, last, added, removed=0, exists=True) -> dict:
    return {
        "key": key,
        "exists": exists,
        "length": length,
        "first_id": first,
        "last_id": last,
        "last_generated_id": last,
        "entries_added": added,
        "removed": removed,
        "max_deleted_id": "0-0",
        "cap": None,
    }


def group(name, consumers, pending, last, read, lag, source="server", trimmed=0, at_least=False) -> dict:
    return {
        "name": name,
        "consumers": consumers,
        "pending": pending,
        "last_delivered_id": last,
        "entries_read": read,
        "lag": lag,
        "lag_source": source,
        "lag_at_least": at_least,
        "trimmed_unread": trimmed,
        "pending_trimmed": 0,
        "pending_trimmed_at_least": False,
    }


def consumer(name, pending, idle, inactive) -> dict:
    return {"name": name, "pending": pending, "idle_ms": idle, "inactive_ms": inactive}


def doc(part, groups, dead) -> dict:
    return {"stream": part, "groups": groups, "dead_letters": {"key": "x", "length": dead}, "warnings": ["w"]}


SHARD0 = doc(
    stream("s:{0}", 5, "9-0", "90-0", 6, removed=1),
    [
        group(
            "g", [consumer("c1", 2, 500, 400), consumer("c2", 0, 90, -1), consumer("c3", 0, 95, -1)], 2, "90-0", 6, 0
        ),
        group("audit", [], 0, "0-0", None, 5),
    ],
    dead=1,
)
SHARD1 = doc(
    stream("s:{1}", 3, "10-0", "100-0", 3),
    [
        group(
            "g",
            [consumer("c1", 1, 200, 300), consumer("c2", 0, 80, 70), consumer("c3", 0, 85, -1)],
            1,
            "100-0",
            2,
            1,
            source="counted",
        ),
        group("audit", [], 0, "10-0", 1, 2),
    ],
    dead=2,
)


def test_the_totals_are_the_sums_of_the_shards():
    total = combine("s", "s:dlq", [SHARD0, SHARD1], cap=10)
    assert total["stream"] == {
        "key": "s",
        "exists": True,
        "length": 8,
        "first_id": "9-0",  # the oldest of any shard, as a number: 9-0 before 10-0
        "last_id": "100-0",
        "last_generated_id": "100-0",
        "entries_added": 9,
        "removed": 1,
        "max_deleted_id": "0-0",
        "cap": 10,
    }
    audit, g = total["groups"]  # by name
    assert g == {
        "name": "g",
        "consumers": [
            consumer("c1", 3, 200, 300),  # pending summed; idle and inactive: the latest on any shard
            consumer("c2", 0, 80, 70),  # given an entry on one shard: that one counts
            consumer("c3", 0, 85, -1),  # -1 (never given an entry) only if so on every shard
        ],
        "pending": 3,
        "last_delivered_id": "100-0",
        "entries_read": 8,
        "lag": 1,
        "lag_source": "counted",  # counted on one shard: counted
        "lag_at_least": False,
        "trimmed_unread": 0,
        "pending_trimmed": 0,
        "pending_trimmed_at_least": False,
    }
    # audit never read shard 0 (entries_read nil at 0-0: it has read 0 there), and 1 entry of shard 1
    assert (audit["name"], audit["entries_read"], audit["lag"], audit["consumers"]) == ("audit", 1, 7, [])
    assert audit["last_delivered_id"] == "10-0"
    assert total["dead_letters"] == {"key": "s:dlq", "length": 3}
    assert total["warnings"] == []  # info finds them in the totals


def test_what_one_shard_cannot_tell_the_total_cannot_either():
    unknown = doc(stream("s:{1}", 3, "10-0", "100-0", None), [group("g", [], 0, "100-0", None, None)], 0)
    total = combine("s", "s:dlq", [SHARD0, unknown], cap=None)
    assert total["stream"]["entries_added"] is None and total["stream"]["length"] == 8
    [_, g] = total["groups"]
    assert g["lag"] is None and g["entries_read"] is None  # entries deleted on a shard: unknown
    only_unknown = combine("s", "s:dlq", [unknown, unknown], cap=None)
    assert only_unknown["groups"][0]["entries_read"] is None
    # nil on every shard is nil in all, as Redis says it of one key (even at 0-0)
    never = doc(stream("s:{0}", 1, "1-0", "1-0", 1), [group("audit", [], 0, "0-0", None, 1)], 0)
    assert combine("s", "s:dlq", [never, never], cap=None)["groups"][0]["entries_read"] is None


def test_a_stream_no_shard_holds_yet():
    missing = doc(stream("s:{0}", 0, None, None, None, exists=False), [], 0)
    total = combine("s", "s:dlq", [missing, missing], cap=None)
    assert total["stream"]["key"] == "s" and total["stream"]["exists"] is False
    assert total["groups"] == [] and total["dead_letters"]["length"] == 0


def test_a_consumer_never_inactive_anywhere_is_none_on_redis_7_0():
    """Redis 7.0 reports no `inactive`: None on every shard is None in all."""
    old = [
        doc(stream(f"s:{{{i}}}", 1, "1-0", "1-0", 1), [group("g", [consumer("c1", 0, 5, None)], 0, "1-0", 1, 0)], 0)
        for i in (0, 1)
    ]
    assert combine("s", "s:dlq", old, cap=None)["groups"][0]["consumers"][0]["inactive_ms"] is None


@pytest.mark.parametrize(
    "ms, said",
    [
        (0, "0ms"),
        (850, "850ms"),
        (999, "999ms"),
        (1000, "1.0s"),
        (12_345, "12.3s"),
        (60_000, "1m00s"),
        (245_000, "4m05s"),
        (3_599_999, "59m59s"),
        (3_600_000, "1h00m"),
        (7_800_000, "2h10m"),
        (86_400_000, "1d00h"),
        (273_600_000, "3d04h"),
    ],
)
def test_a_time_span_as_a_person_says_it(ms, said):
    assert duration(ms) == said
