"""stream_pubsub/trimming.py's arithmetic on its own: the cut a MAXLEN becomes (on a real stream),
and the count of what a trim removed before a group read it (UnreadTrims), from XINFO replies
built by hand in both shapes (a map, RESP3; a flat list, RESP2) and from a real server.

Redis 7.2+ and Valkey move a group's entries-read counter past a gap the trim made; Redis 7.0
does not (its counter, and so its lag, stay behind by the gap): UnreadTrims works it out from
entries-added and XLEN there, and corrects the lag it reports afterwards.
"""

from __future__ import annotations

import pytest
from conftest import STREAM, add

from stream_pubsub.ids import next_id
from stream_pubsub.replies import group_info, raw_replies
from stream_pubsub.trimming import UnreadTrims, cut_for_maxlen


# -- the cut of a MAXLEN ---------------------------------------------------------------------------
def test_the_cut_keeps_the_newest_maxlen_entries(r):
    ids = [r.xadd(STREAM, {"n": n}, id=f"{n}0-0").decode() for n in range(1, 11)]  # 10-0, 20-0 ... 100-0
    assert cut_for_maxlen(r, STREAM, 3, 10) == "80-0"  # many to remove: the first to keep, from the new end
    assert cut_for_maxlen(r, STREAM, 8, 10) == "20-1"  # few: just after the last to go, from the old end
    assert cut_for_maxlen(r, STREAM, 0, 10) == "100-1"  # all of them
    assert cut_for_maxlen(r, STREAM, 10, 10) is None and cut_for_maxlen(r, STREAM, 12, 10) is None
    r.xtrim(STREAM, minid=cut_for_maxlen(r, STREAM, 8, 10), approximate=False)
    assert [i.decode() for i, _ in r.xrange(STREAM)] == ids[2:]  # XTRIM MINID <cut> leaves exactly 8


def test_the_cut_pages_through_a_stream_longer_than_a_page(r):
    ids = add(r, 2500)  # PAGE is 1000: the n-th entry is on the second or third page
    assert cut_for_maxlen(r, STREAM, 1200, 2500) == ids[1300]
    assert cut_for_maxlen(r, STREAM, 1300, 2500) == next_id(ids[1199])
    assert cut_for_maxlen(r, STREAM, 2100, 2500) == next_id(ids[399])


# -- what a trim removed before the group read it ------------------------------------------------
def xinfo_stream(added: int, length: int, first: str, resp: int) -> dict | list:
    """XINFO STREAM as the consumer reads it raw: a map (RESP3) or a flat list of pairs (RESP2)."""
    info = {b"length": length, b"entries-added": added, b"first-entry": [first.encode(), [b"n", b"1"]]}
    return info if resp == 3 else [x for pair in info.items() for x in pair]


def group(last: str, read: int | None, lag: int | None = None) -> dict:
    """A group of XINFO GROUPS, raw (7.0+: entries-read and lag)."""
    return {b"name": b"g", b"last-delivered-id": last.encode(), b"entries-read": read, b"lag": lag}


@pytest.mark.parametrize("resp", [2, 3])
def test_a_gap_redis_7_2_reports_is_its_counters_jump(resp):
    """100 added, trimmed to the newest 10 (91..100) while the group had read 5: it reads the 10,
    and Redis 7.2+ moves entries-read to 100. 85 were trimmed unread."""
    trims = UnreadTrims(STREAM, "g")
    gap = trims.gap(xinfo_stream(100, 10, "91-0", resp), group("5-0", 5), group("100-0", 100, lag=0), 10)
    assert gap == 85
    assert trims.counter_behind == 0 and trims.lag(group("100-0", 100, lag=0)) == 0


@pytest.mark.parametrize("resp", [2, 3])
def test_a_gap_redis_7_0_hides_is_worked_out_and_its_lag_corrected(resp):
    """The same on Redis 7.0: entries-read only grows by the 10 read (15), its lag stays 85 too high."""
    trims = UnreadTrims(STREAM, "g")
    gap = trims.gap(xinfo_stream(100, 10, "91-0", resp), group("5-0", 5), group("100-0", 15, lag=85), 10)
    assert gap == 85
    assert trims.counter_behind == 85 and trims.lag(group("100-0", 15, lag=85)) == 0
    # 50 more added, trimmed to 10 again (141..150): 40 more unread gone; the counter lags by both gaps
    gap = trims.gap(xinfo_stream(150, 10, "141-0", resp), group("100-0", 15, 85), group("150-0", 25, lag=125), 10)
    assert gap == 40
    assert trims.counter_behind == 125 and trims.lag(group("150-0", 25, lag=125)) == 0
    assert trims.lag(group("150-0", 25, lag=130)) == 5  # 5 added since: real lag
    assert trims.lag(None) is None and trims.lag(group("150-0", 25)) is None  # no lag before 7.0
    assert trims.warning(40) == (
        f"40 entries were trimmed from {STREAM} before group g read them (its MAXLEN is too small for this pace)"
    )


def test_no_gap_when_nothing_the_group_had_not_read_was_trimmed():
    trims = UnreadTrims(STREAM, "g")
    info = xinfo_stream(100, 10, "91-0", 3)
    assert trims.gap(info, group("95-0", 95), group("100-0", 100), 5) == 0  # read past the first entry
    assert trims.gap(info, group("91-0", 91), group("100-0", 100), 9) == 0  # read up to it: 92.. left
    assert trims.gap({b"length": 0, b"entries-added": 100, b"first-entry": None}, group("5-0", 5), None, 0) == 0
    assert trims.gap(info, None, None, 0) == 0  # no group yet
    assert trims.gap(info, group("5-0", None), group("100-0", None), 10) == 0  # entries deleted: cannot tell
    assert trims.counter_behind == 0


def test_a_group_created_on_an_empty_stream_has_read_nothing():
    """Its entries-read is nil, not 0: counted as 0, so a trim before its first read is a gap."""
    trims = UnreadTrims(STREAM, "g")
    assert trims.gap(xinfo_stream(100, 10, "91-0", 2), group("0-0", None), group("100-0", 10, 90), 10) == 90
    assert trims.lag(group("100-0", 10, 90)) == 0


@pytest.mark.parametrize("resp", [2, 3])
def test_the_gap_on_this_server(server, resp):
    """What the consumer does (stream_pubsub/group.py), against the real server: XINFO STREAM and
    GROUPS around a read, raw. Redis 7.0 and Valkey 9 differ in the counters, not in the answer."""
    import redis

    db = redis.Redis.from_url(server.url, protocol=resp)
    raw_replies(db)
    add(db, 5)
    db.xgroup_create(STREAM, "g", id="0")
    db.xreadgroup("g", "c1", {STREAM: ">"})
    add(db, 95)
    db.xtrim(STREAM, maxlen=10, approximate=False)
    trims = UnreadTrims(STREAM, "g")
    before = group_info(db.xinfo_groups(STREAM), b"g")
    info = db.xinfo_stream(STREAM)
    db.xreadgroup("g", "c1", {STREAM: ">"})
    after = group_info(db.xinfo_groups(STREAM), b"g")
    assert trims.gap(info, before, after, 10) == 85
    assert trims.lag(after) == 0
    db.close()
