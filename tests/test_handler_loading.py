"""Naming your handler: `consumer.py GROUP CONSUMER --handler module:function`, or HANDLER in the
environment; a handler that cannot be imported or called is one line and exit 2, before anything
is read.
"""

from __future__ import annotations

import pytest
from conftest import GROUP, STREAM, add, group_info, handlers, journal, pending, run, summary

# -- f. a handler that cannot be used ----------------------------------------------------------------

BAD_HANDLERS = {
    "no colon": ("app", "use module:function, like examples.alerts:process"),
    "no such module": ("nosuchmodule_xyz:process", "no module 'nosuchmodule_xyz' (looked in "),
    "no such package member": ("examples.nosuch:process", "no module 'examples.nosuch' (looked in "),
    "raises at import": ("raising:process", "importing raising failed: RuntimeError: database not configured"),
    "a syntax error": ("broken:process", "importing broken failed: SyntaxError: "),
    "a missing dependency": (
        "pricing_rules:process",
        "importing pricing_rules failed: ModuleNotFoundError: No module named 'pricing'",
    ),
    "no such function": ("app:nope", "app has no 'nope'"),
    "not callable": ("app:SETTINGS", "it is a dict, not a function"),
    "one argument": ("app:one", "it cannot be called as one(message_id, message): too many positional arguments"),
    "three arguments": ("app:three", "it cannot be called as three(message_id, message): missing a required"),
}

BAD_MODULES = {
    "app": """
    SETTINGS = {"threshold": 0.9}


    def process(message_id, message):
        pass


    def one(message_id):
        pass


    def three(message_id, message, extra):
        pass
    """,
    "raising": 'raise RuntimeError("database not configured")\n',
    "broken": "def process(message_id, message:\n    pass\n",
    "pricing_rules": "import pricing  # not installed\n",
}


@pytest.mark.parametrize("case", BAD_HANDLERS, ids=lambda case: case.replace(" ", "-"))
def test_a_handler_that_cannot_be_used_is_one_line_and_exit_2_before_anything_is_read(r, server, tmp_path, case):
    env = handlers(tmp_path, **BAD_MODULES)
    spec, why = BAD_HANDLERS[case]
    ids = add(r, 3)
    r.xgroup_create(STREAM, GROUP, id="0")

    for how in ("option", "HANDLER"):
        if how == "option":
            done = run("consumer.py", GROUP, "c1", "--handler", spec, "--burst", url=server.url, env=env)
        else:
            done = run("consumer.py", GROUP, "c1", "--burst", url=server.url, env={**env, "HANDLER": spec})

        assert done.returncode == 2, (how, done.stderr)
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert line.startswith(f"Error: --handler {spec}: {why}"), (how, line)

    info = group_info(r)  # nothing read: the group is as it was created
    assert info["last-delivered-id"] == b"0-0" and info["pending"] == 0 and info["consumers"] == 0
    assert r.xinfo_consumers(STREAM, GROUP) == []
    assert [i.decode() for i, _ in r.xrange(STREAM)] == ids
    assert not (tmp_path / "journal.log").exists()


def test_the_handler_env_var_names_the_handler(r, server, tmp_path):
    env = handlers(
        tmp_path,
        app="from journal import journal\n\n\ndef process(message_id, message):\n    journal(message_id, 'env')\n",
    )
    ids = add(r, 2)

    done = run(
        "consumer.py",
        GROUP,
        "c1",
        "--start-from",
        "0",
        "--burst",
        url=server.url,
        env={**env, "HANDLER": "app:process"},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert journal(tmp_path) == [[ids[0], "env"], [ids[1], "env"]]
    assert summary(done.stderr)["processed"] == 2 and pending(r) == []
