"""What the machinery tells the person at the terminal: a line on stderr, or an error that ends
the script. The package never talks Click: the scripts turn `UserError` into their exit
(config.Command), so a program that imports stream_pubsub gets plain exceptions."""

from __future__ import annotations

import sys


class UserError(Exception):
    """Something a person must know or fix, said in one line (the text); the script exits with
    `exit_code` (1: a server or its data; UsageError: 2, the command line)."""

    exit_code = 1


class UsageError(UserError):
    exit_code = 2


class Interrupted(UserError):
    """Ctrl-C (or SIGTERM) stopped a command between two steps, and the text says where: printed as
    it is (not as an error), exit 130, the shell's code for a command ended by SIGINT."""

    exit_code = 130


def say(text: str) -> None:
    """One line on stderr, at once (diagnostics, never the output a pipe reads)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
