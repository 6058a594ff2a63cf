"""A reply lost with the connection: which of the readings sent Redis stored all the same.

The connection killed, a server frozen past the socket timeout, a failover: the XADDs were
written, and some or all of their replies never came. Sent again blindly, a stored reading is
stored twice. Redis runs the commands of one connection in order, so what it stored is a prefix
of the unanswered readings; the stream says which. Its entries after the newest ID known to be
ours (the last reply read, or the stream's last ID before the first XADD) are read with XRANGE,
a page at a time, up to its last entry now, and matched to the readings by their fields: a
reading's temp and humidity are random floats' repr, so they tell readings apart, and other
producers' entries in between are skipped.
"""

from __future__ import annotations

PAGE = 1000  # entries per XRANGE


def stored_among(db, stream: str, after: bytes, readings: list[dict[str, str]]) -> dict[int, bytes]:
    """{place in `readings`: the ID Redis gave it} for each reading the stream holds after `after`.

    Readings with the same fields (every field set by hand) are matched in the order they were sent.
    """
    newest = db.xrevrange(stream, count=1)
    if not newest:
        return {}  # no stream (deleted, or a server that came back empty): none of them is stored
    wanted: dict[tuple, list[int]] = {}  # fields, as XRANGE returns them -> places in `readings`
    for place, reading in enumerate(readings):
        wanted.setdefault(tuple((k.encode(), v.encode()) for k, v in reading.items()), []).append(place)
    found, start = {}, b"(" + after
    while wanted:
        page = db.xrange(stream, start, newest[0][0], count=PAGE)
        for entry_id, fields in page:
            places = wanted.get(key := tuple(fields.items()))
            if places:
                found[places.pop(0)] = entry_id
                if not places:
                    del wanted[key]
        if len(page) < PAGE:
            break
        start = b"(" + page[-1][0]
    return found


def trimmed_before(found: dict[int, bytes]) -> list[int]:
    """Places before the last reading found that were not found: with --maxlen, stored and trimmed
    away since (what Redis stored is a prefix); without it, refused (OOM) and so not stored."""
    last = max(found, default=-1)
    return [place for place in range(last) if place not in found]
