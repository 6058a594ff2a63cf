"""stream_pubsub/ids.py on its own: entry IDs compared as numbers, the ID just after one, and what
a person may type for an ID. Counting a range is checked on a real stream."""

from __future__ import annotations

import pytest
from conftest import STREAM, add

from stream_pubsub.ids import ID, Split, count_entries, id_text, next_id, parse_id, split_at


def test_an_id_is_two_numbers():
    assert parse_id("1700000000000-3") == (1700000000000, 3)
    assert parse_id(b"1700000000000-3") == (1700000000000, 3)
    assert parse_id("1700000000000") == (1700000000000, 0)  # the time alone: its first entry
    assert parse_id("0-0") == (0, 0)


def test_ids_compare_as_numbers_not_as_text():
    assert "9-0" > "10-0" and parse_id("9-0") < parse_id("10-0")
    assert "5-10" < "5-9" and parse_id("5-10") > parse_id("5-9")
    assert sorted(["10-0", "9-5", "9-10", "100-0"], key=parse_id) == ["9-5", "9-10", "10-0", "100-0"]


def test_the_id_just_after_one():
    assert next_id("5-3") == "5-4"
    assert next_id(b"5-3") == "5-4"
    assert next_id("5") == "5-1"  # 5 is 5-0
    assert next_id("1700000000000-18446744073709551614") == "1700000000000-18446744073709551615"


def test_id_text():
    assert id_text(b"1-1") == "1-1" and id_text("1-1") == "1-1" and id_text(None) is None


@pytest.mark.parametrize("typed", ["1700000000000-0", "1700000000000", "0", "0-0"])
def test_what_a_person_may_type_for_an_id(typed):
    assert ID.match(typed)


@pytest.mark.parametrize("typed", ["", "-", "+", "$", "1-", "-1", "1-2-3", "1.5", "abc", "1-0 ", "(1-0"])
def test_what_is_not_an_id(typed):
    assert not ID.match(typed)


def test_counting_a_range_stops_at_its_limit(r):
    ids = add(r, 2500)
    assert count_entries(r, STREAM) == 2500  # three pages
    assert count_entries(r, STREAM, ids[10], ids[19]) == 10
    assert count_entries(r, STREAM, "(" + ids[10], ids[19]) == 9
    assert count_entries(r, STREAM, limit=1200) == 1200  # "at least 1,200"
    assert split_at(r, STREAM, ids[2399], 2500) == Split(2400, 100, exact=True)  # near the end: exact, quickly
    assert split_at(r, STREAM, ids[99], 2500) == Split(100, 2400, exact=True)
    assert split_at(r, STREAM, ids[1249], 2500, limit=1000) == Split(1000, 1000, exact=False)  # at least, both sides
