"""admin.py as a whole: every command's help has an example and every option a help text, and the
README's admin.py examples show what it really prints.
"""

from __future__ import annotations

import json
import re
import shlex

import click
from conftest import ROOT, admin, readme_state

S = "app:event"


# -- help ----------------------------------------------------------------------------------------
def test_every_command_has_an_example_and_every_option_help():
    import admin

    def commands(group, path):
        for name, command in group.commands.items():
            yield f"{path} {name}", command
            if isinstance(command, click.Group):
                yield from commands(command, f"{path} {name}")

    for path, command in commands(admin.main, "python admin.py"):
        if not isinstance(command, click.Group):
            assert path in command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.name}"


# -- the README shows real output ----------------------------------------------------------------
def mask(text: str) -> str:
    """Output with what changes from run to run (IDs, times, column widths) made uniform."""
    text = re.sub(r"\b\d{10,}-\d+\b", "<id>", text)
    text = re.sub(r"\b(\d+ms|\d+\.\d+s|\d+m\d\ds|\d+h\d\dm|\d+d\d\dh|n/a)(?=\s|$)", "<age>", text)
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


def readme_examples() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## See what is going on\n")[1].split("\n## ")[0]
    blocks = re.findall(r"```\n(\$ python admin\.py [^\n]*)\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the README's admin.py examples went missing"
    return blocks


def test_readme_shows_what_admin_prints(r, server):
    readme_state(r)
    for command, shown in readme_examples():
        got = admin(*shlex.split(command)[3:], url=server.url)
        assert got.returncode == 0, got.stderr
        assert mask(got.stdout) == mask(shown), command


def test_a_consumer_that_never_got_an_entry_is_never_inactive(r, server):
    """Valkey and Redis 7.2+ report `inactive` -1 for a consumer nothing was delivered to: "never",
    not "-1ms"; Redis 7.0 reports no `inactive` at all: "n/a"."""
    r.xgroup_create(S, "group1", "$", mkstream=True)
    r.xgroup_createconsumer(S, "group1", "c-never")  # in the group, never given an entry
    got = admin("info", url=server.url)
    doc = json.loads(admin("info", "--json", url=server.url).stdout)
    reported = r.xinfo_consumers(S, "group1")[0].get("inactive")
    row = next(line for line in got.stdout.splitlines() if "c-never" in line)
    member = doc["groups"][0]["consumers"][0]
    if reported is None:
        assert member["inactive_ms"] is None and row.rstrip().endswith("n/a")
    else:
        assert reported == -1 and member["inactive_ms"] == -1 and row.rstrip().endswith("never"), row
