"""The tests run the scripts without the settings a developer's shell exports: every variable the
scripts read is in config.ENVIRONMENT, and conftest's script_env leaves all of them out."""

from __future__ import annotations

import click
from conftest import STREAM, add, group_info, processed, run, script_env, sent_ids

import config

SETTINGS = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "STREAM_KEY": "elsewhere",
    "DEAD_LETTER_KEY": "elsewhere:dlq",
    "STREAM_MAXLEN": "1",
    "CLAIM_IDLE": "not-a-number",
    "MAX_DELIVERIES": "0",
    "STREAM_SHARDS": "3",
    "HANDLER": "nosuch:process",
    "ALERT_TEMP": "-1",
}


def options(command: click.Command):
    yield from command.params
    for sub in getattr(command, "commands", {}).values():
        yield from options(sub)


def test_every_variable_the_scripts_read_is_in_config_environment():
    import admin
    import consumer
    import demo
    import producer

    read = {
        param.envvar
        for script in (producer, consumer, admin, demo)
        for param in options(script.main)
        if isinstance(param, click.Option) and param.envvar
    }
    assert {"REDIS_URL", "STREAM_KEY", "CLAIM_IDLE", "HANDLER"} <= read  # (the walk finds them)
    assert read <= set(config.ENVIRONMENT), read - set(config.ENVIRONMENT)


def test_script_env_leaves_out_every_setting_of_the_shell(monkeypatch):
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOMETHING_ELSE", "kept")
    env = script_env("redis://127.0.0.1:6390/0", STREAM_KEY="given")
    assert {name: env.get(name) for name in SETTINGS} == {
        **dict.fromkeys(SETTINGS),
        "REDIS_URL": "redis://127.0.0.1:6390/0",  # what the test gives, and only that
        "STREAM_KEY": "given",
    }
    assert env["SOMETHING_ELSE"] == "kept"
    assert "REDIS_URL" not in script_env(None)


def test_the_scripts_run_as_the_test_says_whatever_the_shell_exports(r, server, monkeypatch):
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    ids = add(r, 3)
    sent = run("producer.py", "sensor1", url=server.url)
    got = run("consumer.py", "group1", "c1", "--start-from", "0", "--burst", url=server.url)
    assert sent.returncode == 0 and got.returncode == 0, sent.stderr + got.stderr
    assert processed(got.stdout) == ids + sent_ids(sent.stdout)  # the default handler, on app:event
    assert r.keys("*") == [STREAM.encode()] and r.xlen(STREAM) == 4  # no shards, no cap, no other stream
    assert group_info(r)["pending"] == 0
