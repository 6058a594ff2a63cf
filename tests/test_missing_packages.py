"""A new terminal without the virtual environment: `python producer.py sensor1` with a Python that
lacks click, redis or walrus says which package is missing and how to get it, in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPTS = {
    "producer.py": ["sensor1"],
    "consumer.py": ["group1", "c1", "--burst"],
    "admin.py": ["info"],
    "demo.py": [],
}
SITE_PACKAGES = Path(__import__("click").__file__).parent.parent  # the venv's, where the tests run from


def bare_python(*args, url: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """The tests' Python without site-packages, as a Python without the project's packages is.

    -S skips `site`, so no site-packages (neither the venv's nor the system's); -s the user's. Not -I:
    it would also keep the script's own folder off sys.path, which a real `python producer.py` has.
    -E (no PYTHONPATH) unless a PYTHONPATH is given on purpose.
    """
    flags = ["-S", "-s"] if pythonpath else ["-S", "-s", "-E"]
    env = {"PATH": os.environ["PATH"], "REDIS_URL": url}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, *flags, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def one_line(got) -> str:
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert got.stdout == ""
    assert "Traceback" not in got.stderr
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bare(shared_server):
    """Checks once that the bare Python really lacks the packages, and has the standard library."""
    for package in ("click", "redis", "walrus", "hiredis"):
        got = bare_python("-c", f"import {package}", url=shared_server.url)
        assert f"No module named '{package}'" in got.stderr
    assert bare_python("-c", "import json, socket", url=shared_server.url).returncode == 0


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_without_its_packages_says_which_and_how_to_get_them(bare, r, server, name):
    got = bare_python(name, *SCRIPTS[name], url=server.url)

    assert one_line(got) == (
        f"Error: the package 'click' is not installed for {sys.executable}: activate the virtual environment "
        "first (`. .venv/bin/activate`), or run `make demo`, which creates it"
    )
    assert r.dbsize() == 0


@pytest.mark.parametrize("name", ["producer.py", "consumer.py", "admin.py"])
def test_the_one_missing_package_is_named(r, server, name, tmp_path):
    for present in ("click", "redis", "hiredis"):  # everything but walrus
        (tmp_path / present).symlink_to(SITE_PACKAGES / present)

    got = bare_python(name, *SCRIPTS[name], url=server.url, pythonpath=tmp_path)

    line = one_line(got)
    assert line.startswith(f"Error: the package 'walrus' is not installed for {sys.executable}: ")
    assert "`. .venv/bin/activate`" in line
    assert r.dbsize() == 0
