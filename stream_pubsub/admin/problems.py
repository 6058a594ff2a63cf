"""What admin.py's commands raise for the person at the terminal: one sentence, and the exit code
admin.py gives it (the package never exits, and never needs Click to say why)."""

from __future__ import annotations


class Problem(Exception):
    """A mistake, or a state of Redis that stops the command: said in one line, exit 1."""

    exit_code = 1


class UsageProblem(Problem):
    """A usage error known only once Redis has answered (a start ID it refuses): exit 2, like Click's."""

    exit_code = 2


class Interrupted(Problem):
    """Ctrl-C (or SIGTERM) stopped the command between two steps, and this says where: exit 130,
    the shell's code for a command ended by SIGINT."""

    exit_code = 130
