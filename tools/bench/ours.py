"""Our scripts, run as a user runs them: subprocesses, timed from start to exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import redis

import config

from .sizes import ROOT, STREAM


def script_env(url: str, extra: dict | None = None) -> dict:
    """The bench's environment for a script: REDIS_URL set, and none of the scripts' other settings
    (STREAM_KEY, STREAM_SHARDS, STREAM_MAXLEN, HANDLER...) that the shell running the bench may have."""
    return {**config.without_settings(os.environ), **(extra or {}), "REDIS_URL": url}


def run_script(url: str, *args: str, timeout: float = 120, env: dict | None = None) -> float:
    """Run `python <script> <args>` against the bench's server; its wall time, start to exit.

    env: variables to set on top of the bench's own (PYTHONPATH for a --handler module).
    """
    env = script_env(url, env)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return wall


def spawn_script(url: str, *args: str, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=script_env(url), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
    )


def fill(url: str, client: redis.Redis, n: int) -> None:
    """An empty stream, then n readings in it (sent by our producer)."""
    client.delete(STREAM)
    run_script(url, "producer.py", "sensor1", "--count", str(n), "-q", timeout=300)
    assert client.xlen(STREAM) == n


def group_state(client: redis.Redis, group: str, key: str = STREAM) -> dict:
    """XINFO GROUPS for one group of the stream (or of one shard); {} while the group (or the stream) does not exist."""
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no such key
        return {}
    return next((g for g in groups if g["name"] == group.encode()), {})
