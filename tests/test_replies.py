"""stream_pubsub/replies.py on its own: Redis's raw replies in both protocols' shapes (RESP2 lists,
RESP3 maps), and an entry's fields decoded once, for the handler, or said to be undecodable.
The shapes are built by hand, then asked of the real server in both protocols."""

from __future__ import annotations

import pytest
import redis
from conftest import STREAM

from stream_pubsub.replies import (
    Undecodable,
    as_bytes_dict,
    as_dict,
    decode,
    entries,
    group_info,
    raw_replies,
    streams,
    undecodable,
)

ENTRY = [b"1-0", [b"sensor_id", b"sensor1", b"temp", b"0.5"]]
RESP2 = [[b"app:event", [ENTRY]], [b"other", []]]  # XREADGROUP: a list of [stream, entries]
RESP3 = {b"app:event": [ENTRY], b"other": []}  # ... a map of stream -> entries


def test_an_xreadgroup_reply_is_its_streams_in_either_shape():
    assert streams(RESP2) == streams(RESP3) == [(b"app:event", [ENTRY]), (b"other", [])]
    assert streams(None) == streams([]) == streams({}) == []  # BLOCK ran out: nil
    assert entries(RESP2) == entries(RESP3) == [ENTRY]
    assert entries(None) == []


def test_an_xinfo_reply_is_a_dict_in_either_shape():
    flat = [b"name", b"g", b"pending", 2, b"last-delivered-id", b"5-0"]
    mapped = {b"name": b"g", b"pending": 2, b"last-delivered-id": b"5-0"}
    assert as_dict(flat) == as_dict(mapped) == mapped
    assert group_info([flat, [b"name", b"h", b"pending", 0]], b"g") == mapped
    assert group_info([mapped], b"h") is None


def test_fields_are_decoded_once_in_either_shape():
    assert decode([b"sensor_id", b"Z\xc3\xbcrich", b"temp", b"0.5"]) == {"sensor_id": "Zürich", "temp": "0.5"}
    assert decode({b"sensor_id": b"Z\xc3\xbcrich", b"temp": b"0.5"}) == {"sensor_id": "Zürich", "temp": "0.5"}
    assert decode([]) == decode({}) == {}  # an entry trimmed away, re-read from the pending list
    assert (
        as_bytes_dict([b"a", b"1", b"b", b"2"]) == as_bytes_dict({b"a": b"1", b"b": b"2"}) == {b"a": b"1", b"b": b"2"}
    )


@pytest.mark.parametrize(
    "fields, said",
    [
        ([b"sensor_id", b"s1", b"temp", b"\xff\xfe0.5"], "temp is not valid UTF-8"),
        ({b"sensor_id": b"s1", b"temp": b"\xff\xfe0.5"}, "temp is not valid UTF-8"),
        ([b"sensor_id", b"s1", b"t\xe9mp", b"0.5"], "the name of a field is not valid UTF-8"),
        ({b"t\xe9mp": b"\xff"}, "the name of a field is not valid UTF-8"),  # the name is said first
        ([b"t\xe9mp", b"0.5", b"note", b"\xff"], "the name of a field is not valid UTF-8"),
        ([b"sensor_id", b"\xc3"], "sensor_id is not valid UTF-8"),  # a character cut in half
    ],
)
def test_an_entry_that_is_not_utf8_says_what(fields, said):
    with pytest.raises(Undecodable) as refused:
        decode(fields)
    assert str(refused.value) == said == undecodable(fields)


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_servers_raw_replies_in_either_protocol(server, protocol):
    """What the consumer gets on this server, raw: the same streams, fields and groups either way."""
    db = redis.Redis.from_url(server.url, protocol=protocol)
    raw_replies(db)
    first = db.xadd(STREAM, {"sensor_id": "sensor1", "temp": "0.5"})
    bad = db.xadd(STREAM, {"sensor_id": "sensor1", "temp": b"\xff"})
    db.xgroup_create(STREAM, "g", id="0")
    reply = db.xreadgroup("g", "c1", {STREAM: ">"}, count=10)
    assert isinstance(reply, dict if protocol == 3 else list)
    [(key, got)] = streams(reply)
    assert key == STREAM.encode() and [entry_id for entry_id, _ in got] == [first, bad]
    assert decode(got[0][1]) == {"sensor_id": "sensor1", "temp": "0.5"}
    with pytest.raises(Undecodable, match="^temp is not valid UTF-8$"):
        decode(got[1][1])
    info = group_info(db.xinfo_groups(STREAM), b"g")
    assert info[b"pending"] == 2 and info[b"last-delivered-id"] == bad
    assert as_dict(db.xinfo_stream(STREAM))[b"length"] == 2
    db.xdel(STREAM, first)  # its data gone, still pending: re-read with ID 0, it has no fields
    [(_, again)] = streams(db.xreadgroup("g", "c1", {STREAM: "0"}, count=10))
    assert again[0][0] == first and again[0][1] in (None, [], {})  # nil (RESP2) or none
    db.close()
