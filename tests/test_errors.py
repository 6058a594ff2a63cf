"""A person's mistake or a server that is not there: one clear line, a non-zero exit, no traceback,
nothing written to Redis. And --help shows the tutorial's command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from conftest import ROOT, run, script_env

from stream_pubsub.local_server import free_port

STREAM = "app:event"
# What each script is run as in these tests: the tutorial's commands (the consumer as a batch).
SCRIPTS = {
    "producer.py": ["sensor1"],
    "producer.py --count 5": ["sensor1", "--count", 5],
    "producer.py --count 3 --interval 0.01": ["sensor1", "--count", 3, "--interval", 0.01],
    "consumer.py": ["group1", "c1", "--burst"],
}
ONE_OF_EACH = ["producer.py", "consumer.py"]


def script(name: str) -> str:
    return name.split()[0]


def one_error_line(result, *fragments: str, code: int = 1) -> str:
    """The single line on stderr of a failed run; asserts the exit code and that it says each fragment."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def usage_error(result, *fragments: str) -> str:
    """Click's usage error: exit 2, the usage, and one `Error:` line saying each fragment."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


# -- nothing there, or the wrong address ---------------------------------------------------


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize("userinfo", [":s3cret@", "alice:s3cret@"], ids=["password", "user-password"])
def test_nothing_listening_fails_fast_naming_host_port_and_how_to_start_one(name, userinfo):
    port = free_port()
    url = f"redis://{userinfo}127.0.0.1:{port}/0"

    started = time.monotonic()
    got = run(script(name), *SCRIPTS[name], url=url)

    assert time.monotonic() - started < 3
    line = one_error_line(got, f"127.0.0.1:{port}", "make redis", "docker compose up -d redis")
    assert "cannot reach Redis" in line
    assert "s3cret" not in got.stdout + got.stderr


@pytest.mark.parametrize("name", ONE_OF_EACH)
def test_nothing_listening_named_by_the_option_too(name):
    port = free_port()
    url = f"redis://:s3cret@127.0.0.1:{port}/0"

    got = run(name, *SCRIPTS[name], "--redis-url", url, url=None)

    one_error_line(got, f"127.0.0.1:{port}", "make redis")
    assert "s3cret" not in got.stdout + got.stderr


@pytest.mark.parametrize("name", ONE_OF_EACH)
@pytest.mark.parametrize("password", ["t0ps3c#r3tpart", "t0ps3c/r3tpart", "t0ps3c?r3tpart"])
def test_a_password_with_an_unencoded_url_character_is_never_shown(name, password):
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"

    got = run(name, *SCRIPTS[name], url=url)

    assert got.returncode == 1
    one_error_line(got)
    for piece in ("t0ps3c", "r3tpart"):
        assert piece not in got.stdout + got.stderr


@pytest.mark.parametrize("name", ONE_OF_EACH)
@pytest.mark.parametrize(
    "template",
    [
        "notaurl",
        "http://127.0.0.1:{port}/0",
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:{port}/abc",  # redis-py alone would quietly use database 0
        "redis://127.0.0.1:{port}/0?nosuchoption=1",
        "redis://127.0.0.1:{port}/0?socket_timeout=soon",
    ],
)
def test_malformed_url_is_one_line_and_nothing_is_written(r, server, name, template):
    url = template.format(port=server.port)

    got = run(name, *SCRIPTS[name], url=url)

    one_error_line(got, "invalid Redis URL")
    assert r.dbsize() == 0
    assert [db for db in r.info("keyspace")] == []  # no other database either


# -- the server says no ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SCRIPTS)
@pytest.mark.parametrize("userinfo", [":wr0ngpass@", "default:wr0ngpass@", ""], ids=["wrong", "user-wrong", "none"])
def test_wrong_or_missing_password_is_one_line_and_nothing_is_written(own_server, name, userinfo):
    server = own_server("--requirepass", "right")
    url = f"redis://{userinfo}127.0.0.1:{server.port}/0"

    started = time.monotonic()
    got = run(script(name), *SCRIPTS[name], url=url)

    assert time.monotonic() - started < 3  # refused credentials are not retried
    said = "needs a password: put it in the URL" if not userinfo else "refused the credentials"
    one_error_line(got, f"Redis at 127.0.0.1:{server.port} {said}")
    assert "wr0ngpass" not in got.stdout + got.stderr
    admin = redis.Redis(port=server.port, password="right")
    assert admin.dbsize() == 0
    admin.close()


@pytest.mark.parametrize(
    ("name", "denied"),
    [
        ("producer.py", "xadd"),
        ("producer.py --count 5", "xadd"),
        ("producer.py --count 3 --interval 0.01", "xadd"),
        ("consumer.py", "xgroup"),
    ],
)
def test_missing_acl_permission_is_one_line_and_nothing_is_written(own_server, name, denied):
    server = own_server("--requirepass", "right")
    admin = redis.Redis(port=server.port, password="right")
    admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", f"-{denied}")

    got = run(script(name), *SCRIPTS[name], url=f"redis://app:pw@127.0.0.1:{server.port}/0")

    line = one_error_line(got, "no permission", denied, f"127.0.0.1:{server.port}")
    assert "pw@" not in line
    assert admin.dbsize() == 0
    admin.close()


def test_consumer_without_xack_permission_fails_in_one_line_and_loses_nothing(own_server):
    server = own_server("--requirepass", "right")
    admin = redis.Redis(port=server.port, password="right")
    admin.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-xack")
    ids = [admin.xadd(STREAM, {"sensor_id": "sensor1", "temp": "0.1", "humidity": "0.2"}) for _ in range(3)]

    got = run(
        "consumer.py",
        "group1",
        "c1",
        "--start-from",
        "0",
        "--burst",
        url=f"redis://reader:pw@127.0.0.1:{server.port}/0",
    )

    assert got.returncode == 1, got.stderr
    assert "Traceback" not in got.stdout + got.stderr
    errors = [line for line in got.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "no permission" in errors[0] and "xack" in errors[0]
    # It found out before reading anything: nothing processed only to stay pending.
    assert got.stdout == ""
    group = admin.xinfo_groups(STREAM)[0]
    assert group["pending"] == 0 and group["last-delivered-id"] == b"0-0"
    assert admin.xlen(STREAM) == len(ids)
    assert not admin.exists(f"{STREAM}:dlq")
    admin.close()


@pytest.mark.parametrize(
    "name",
    [
        *SCRIPTS,
        "producer.py --id",
        "consumer.py --start-from 0",
    ],
)
def test_stream_key_of_another_type_is_said_and_left_untouched(r, server, name):
    r.hset(STREAM, mapping={"owner": "someone else"})
    args = {
        "producer.py --id": ["sensor1", "--id", "1700000000000-1"],
        "consumer.py --start-from 0": ["group1", "c1", "--start-from", "0", "--burst"],
    }.get(name) or SCRIPTS[name]

    got = run(script(name), *args, url=server.url)

    one_error_line(got, f"the key '{STREAM}' at 127.0.0.1:{server.port}", "not a stream (WRONGTYPE)", "left untouched")
    assert r.type(STREAM) == b"hash"
    assert r.hgetall(STREAM) == {b"owner": b"someone else"}
    assert r.keys() == [STREAM.encode()]  # no dead-letter stream, nothing else


def test_other_stream_key_of_another_type(r, server):
    r.set("plant:a", "not a stream")

    got = run("producer.py", "sensor1", "--stream", "plant:a", url=server.url)

    one_error_line(got, "the key 'plant:a'", "WRONGTYPE")
    assert r.get("plant:a") == b"not a stream"


# -- what was typed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "what"),
    [
        ("producer.py", [""], "SENSOR"),
        ("producer.py", ["   "], "SENSOR"),
        ("consumer.py", ["", "c1"], "GROUP"),
        ("consumer.py", ["group1", ""], "CONSUMER"),
        ("consumer.py", [" ", " "], "GROUP"),
    ],
)
def test_empty_names_are_refused(r, server, name, args, what):
    got = run(name, *args, url=server.url)

    usage_error(got, f"Invalid value for '{what}': must not be empty")
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("name", "args", "what"),
    [
        ("producer.py", ["sensor1", "--stream", ""], "--stream"),
        ("producer.py", ["sensor1", "--stream", "  "], "--stream"),
        ("consumer.py", ["group1", "c1", "--burst", "--stream", ""], "--stream"),
        ("consumer.py", ["group1", "c1", "--burst", "--dead-letter", ""], "--dead-letter"),
        ("admin.py", ["info", "--stream", ""], "--stream"),
        ("admin.py", ["pending", "group1", "--stream", ""], "--stream"),
        ("admin.py", ["dlq", "list", "--dead-letter", " "], "--dead-letter"),
    ],
)
def test_an_empty_stream_name_is_refused(r, server, name, args, what):
    got = run(name, *args, url=server.url)

    usage_error(got, f"Invalid value for '{what}'", "must not be empty")
    assert r.dbsize() == 0


def run_with_bytes(script: str, *args: str | bytes, url: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python <script> <args>` with arguments (and environment) as raw bytes: what a terminal in
    another encoding, or a script that builds names from binary data, hands over."""
    environment = {os.fsencode(k): os.fsencode(v) for k, v in script_env(url).items()}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "args", "what"),
    [
        ("producer.py", [b"sensor\xff"], "SENSOR"),
        ("producer.py", ["sensor1", "--stream", b"app:\xe9vent"], "--stream"),
        ("consumer.py", [b"group\xff", "c1", "--burst"], "GROUP"),
        ("consumer.py", ["group1", b"c\xc3", "--burst"], "CONSUMER"),
        ("consumer.py", ["group1", "c1", "--burst", "--dead-letter", b"dlq\xff"], "--dead-letter"),
        ("admin.py", ["pending", b"group\xff"], "GROUP"),
        ("admin.py", ["pending", "group1", "--consumer", b"c\xff"], "--consumer"),
        ("admin.py", ["info", "--stream", b"app\xff"], "--stream"),
        ("producer.py", ["sensor1", "--field", b"temp=h\xf4t"], "--field"),
        ("consumer.py", ["group1", "c1", "--burst", "--fanout", b"out\xff"], "--fanout"),
        ("consumer.py", ["group1", "c1", "--burst", "--order-by", b"sens\xf6r"], "--order-by"),
    ],
)
def test_a_name_that_is_not_utf8_is_refused(r, server, name, args, what):
    got = run_with_bytes(name, *args, url=server.url)

    usage_error(got, f"Invalid value for '{what}'", "is not valid UTF-8")
    assert r.dbsize() == 0


def test_a_stream_from_the_environment_that_is_not_utf8_is_refused(r, server):
    got = run_with_bytes("producer.py", "sensor1", url=server.url, env={b"STREAM_KEY": b"app\xff"})

    usage_error(got, "Invalid value for '--stream' (env var: 'STREAM_KEY'): is not valid UTF-8")
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("name", "args", "missing"),
    [
        ("producer.py", [], "SENSOR"),  # the original companion code: IndexError
        ("consumer.py", [], "GROUP"),
        ("consumer.py", ["group1"], "CONSUMER"),
    ],
)
def test_missing_names_are_a_usage_error(r, server, name, args, missing):
    got = run(name, *args, url=server.url)

    usage_error(got, f"Missing argument '{missing}'")
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("name", "args", "option"),
    [
        ("producer.py", ["sensor1", "--count", "-1"], "--count"),
        ("producer.py", ["sensor1", "--maxlen", "-1"], "--maxlen"),
        ("producer.py", ["sensor1", "--interval", "-1"], "--interval"),
        ("producer.py", ["sensor1", "--count", "many"], "--count"),
        ("consumer.py", ["group1", "c1", "--count", "-1"], "--count"),
        ("consumer.py", ["group1", "c1", "--block", "-1"], "--block"),
        ("consumer.py", ["group1", "c1", "--claim-idle", "-1"], "--claim-idle"),
        ("consumer.py", ["group1", "c1", "--max-deliveries", "-1"], "--max-deliveries"),
    ],
)
def test_negative_numbers_are_refused(r, server, name, args, option):
    got = run(name, *args, url=server.url)

    usage_error(got, f"Invalid value for '{option}'")
    assert r.dbsize() == 0


@pytest.mark.parametrize("entry_id", ["abc", "1-", "-1", "1-2-3", "1.5", "", "1700000000000-x", "$", "*"])
def test_invalid_producer_id_is_a_usage_error(r, server, entry_id):
    got = run("producer.py", "sensor1", "--id", entry_id, url=server.url)

    usage_error(got, "Invalid value for '--id'", "like 1700000000000-0")
    assert r.dbsize() == 0


@pytest.mark.parametrize("start", ["abc", "1-", "-1", "latest", ">", ""])
def test_invalid_consumer_start_is_a_usage_error(r, server, start):
    got = run("consumer.py", "group1", "c1", "--start-from", start, url=server.url)

    usage_error(got, "Invalid value for '--start-from'")
    assert r.dbsize() == 0


def test_exact_without_maxlen_is_a_usage_error(r, server):
    got = run("producer.py", "sensor1", "--exact", url=server.url)

    usage_error(got, "--exact goes with --maxlen")
    assert r.dbsize() == 0


# -- --help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("producer.py", "python producer.py sensor1"),
        ("consumer.py", "python consumer.py group1 c1"),
    ],
)
def test_help_shows_the_tutorial_command_and_exits_0(r, server, name, example):
    got = run(name, "--help", url=server.url)

    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    assert example in [line.strip() for line in got.stdout.splitlines()]  # on a line of its own
    assert "REDIS_URL" in got.stdout and "STREAM_KEY" in got.stdout
    assert r.dbsize() == 0
