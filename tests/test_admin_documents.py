"""What admin.py's machinery gives a program that imports it: documents and plain exceptions, never
Click (admin.py alone declares the commands and prints). And the rules the package now keeps in
one place: what an ID looks like, "a group that never read has read 0", a document printed as JSON
while its long list is still being read, the environment without the scripts' settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, run

import config
from stream_pubsub.admin.output import Later, json_text
from stream_pubsub.ids import BOUND, ID, NEW_ID, entries_read, is_position

SITE_PACKAGES = Path(__import__("redis").__file__).parent.parent
S = "app:event"

PROGRAM = textwrap.dedent(
    """
    import json, sys
    from stream_pubsub.admin import groups, info, pending
    from stream_pubsub.admin.scope import scope
    from stream_pubsub.connection import connect
    from stream_pubsub.telling import UserError

    connection = connect(sys.argv[1])
    where = scope(connection, "app:event")
    created = groups.create(connection, where, "audit", "0")
    waiting = pending.pending(connection, where, "group1", consumer=None, min_idle=0, count=10)
    entries, more = list(waiting.pop("entries")), waiting.pop("more").value
    try:
        pending.pending(connection, where, "nope", consumer=None, min_idle=0, count=10)
    except UserError as exc:
        refused = [type(exc).__module__, str(exc)]
    snapshot = info.snapshot(connection, where, None, 60_000)
    groups_seen = [(g["name"], g["lag"], g["pending"]) for g in snapshot["groups"]]
    print(json.dumps({"created": created, "pending": waiting, "entries": entries, "more": more,
                      "refused": refused, "groups": groups_seen, "click": "click" in sys.modules}))
    """
)


def test_a_program_gets_documents_and_plain_errors_from_the_package_without_click(r, server, tmp_path):
    ids = [r.xadd(S, {"sensor_id": "sensor1", "temp": "0.5", "humidity": "0.1"}).decode() for _ in range(3)]
    r.xgroup_create(S, "group1", id="0")
    r.xreadgroup("group1", "c1", {S: ">"}, count=2)
    packages = tmp_path / "packages"  # what the package needs, and no click
    packages.mkdir()
    for name in ("redis", "walrus", "hiredis"):
        (packages / name).symlink_to(SITE_PACKAGES / name)

    got = subprocess.run(
        [sys.executable, "-S", "-s", "-c", PROGRAM, server.url],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{packages}"},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    doc = json.loads(got.stdout)
    assert doc["created"] == {
        "group": "audit",
        "start": "0",
        "created_on": [0],
        "had_it": [],
        "entries": 3,
        "skipped": 0,
        "to_read": 3,
        "exact": True,
    }
    assert doc["pending"] == {
        "stream": S,
        "group": "group1",
        "pending": 2,
        "consumers": {"c1": 2},
        "filters": {"consumer": None, "min_idle_ms": 0},
    }
    assert [(e["id"], e["consumer"], e["deliveries"], e["in_stream"]) for e in doc["entries"]] == [
        (ids[0], "c1", 1, True),
        (ids[1], "c1", 1, True),
    ]
    assert doc["more"] is False
    assert doc["refused"] == [
        "stream_pubsub.telling",
        "no group 'nope' on stream 'app:event' (its groups: audit, group1)",
    ]
    assert sorted(doc["groups"]) == [["audit", 3, 0], ["group1", 1, 2]]
    assert doc["click"] is False
    # Redis holds the group the program created, at the start, and nothing else changed
    audit, group1 = sorted(r.xinfo_groups(S), key=lambda g: g["name"])
    assert (audit["name"], audit["last-delivered-id"], audit["pending"]) == (b"audit", b"0-0", 0)
    assert (group1["last-delivered-id"].decode(), group1["pending"]) == (ids[1], 2)
    assert r.xlen(S) == 3


@pytest.mark.parametrize("entries", [[], [{"id": "1-0", "fields": {"a": "1"}}], [{"a": 1}, {"b": {"c": None}}]])
def test_a_document_with_a_long_list_is_printed_as_json_dumps_would_print_it_whole(entries):
    read = []

    def as_read():
        for entry in entries:
            read.append(entry)
            yield entry

    def after():
        assert read == entries  # asked only once the list was written
        return ("the next entry",)

    doc = {"stream": S, "filters": {"consumer": None}, "entries": as_read(), "more": Later(after, as_json=bool)}
    pieces = json_text(doc)
    first = next(pieces)

    assert read == []  # nothing read before the document starts
    whole = {"stream": S, "filters": {"consumer": None}, "entries": entries, "more": True}
    assert first + "".join(pieces) == json.dumps(whole, indent=2) + "\n"
    assert "".join(json_text({"stream": S})) == json.dumps({"stream": S}, indent=2) + "\n"


@pytest.mark.parametrize(
    ("text", "an_id", "a_bound", "a_new_id", "a_position"),
    [
        ("1700000000000-3", True, True, True, True),
        ("1700000000000", True, True, True, True),
        ("0", True, True, True, True),
        ("$", False, False, False, True),
        ("(1700000000000-3", False, True, False, False),
        ("-", False, True, False, False),
        ("+", False, True, False, False),
        ("1700000000000-*", False, False, True, False),
        ("1700000000000-", False, False, False, False),
        ("last", False, False, False, False),
        ("", False, False, False, False),
    ],
)
def test_what_an_id_looks_like_is_said_once(text, an_id, a_bound, a_new_id, a_position):
    assert (bool(ID.match(text)), bool(BOUND.match(text)), bool(NEW_ID.match(text))) == (an_id, a_bound, a_new_id)
    assert is_position(text) is a_position


@pytest.mark.parametrize(
    ("counter", "last_delivered", "read"),
    [(None, b"0-0", 0), (None, "0-0", 0), (None, "1700000000000-0", None), (7, "1700000000000-0", 7), (0, b"0-0", 0)],
)
def test_a_group_that_never_read_has_read_0(counter, last_delivered, read):
    assert entries_read(counter, last_delivered) == read


def test_the_environment_without_the_scripts_settings_keeps_everything_else():
    mine = {name: "set in the shell" for name in config.ENVIRONMENT}

    left = config.without_settings({**mine, "PATH": "/bin", "PYTHONPATH": "/x"})

    assert left == {"PATH": "/bin", "PYTHONPATH": "/x"}


def test_a_shard_record_that_is_not_a_number_is_said_in_one_wording_and_left_alone(r, server):
    r.set("app:event:shards", "twelve")

    got = run("admin.py", "info", url=server.url)

    assert got.returncode == 1
    assert got.stdout == ""
    where = server.url.split("//")[1].split("/")[0]
    assert got.stderr == (
        f"Error: app:event:shards at {where} holds b'twelve', not a number of shards; left untouched\n"
    )
    assert r.get("app:event:shards") == b"twelve"
    assert r.keys("*") == [b"app:event:shards"]
