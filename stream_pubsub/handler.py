"""Your own processing: `consumer.py GROUP CONSUMER --handler module:function`.

The function is the tutorial's `process_message(message_id, message)`: called once per entry,
with the entry's ID and its fields decoded as UTF-8 (both str).

    return normally        processed: the entry is acknowledged
    return a dict / a list with --fanout STREAM: added to STREAM, in the same MULTI as the XACK
    raise Unprocessable    it can never succeed: dead-lettered at once, with your text as reason
    raise anything else    this delivery failed: it stays pending and is retried, and is
                           dead-lettered after --max-deliveries, with the exception as reason

Without --handler the consumer runs `print_readings`: check the reading, print its line.
"""

from __future__ import annotations

import os
import sys

from .reading import check_reading
from .stopping import StopNow
from .telling import UsageError


def print_readings(*, quiet: bool):
    """The default handler: a reading that is not valid is dead-lettered (InvalidReading is
    Unprocessable); a valid one is printed as `<id> <sensor> temp=... humidity=...` (unless quiet)."""
    write = sys.stdout.write

    def process(message_id: str, message: dict[str, str]) -> None:
        sensor_id, temp, humidity = check_reading(message)
        if not quiet:
            try:
                write(f"{message_id} {sensor_id} temp={temp:.4f} humidity={humidity:.4f}\n")
            except BrokenPipeError:
                raise OutputClosed from None

    return process


class OutputClosed(StopNow):
    """The consumer's output was closed (`consumer.py ... | head`): stop at once, as a second
    Ctrl-C would; what was not acknowledged stays pending."""

    def __init__(self):
        super().__init__()
        os.write(2, b"the output was closed: stopping; unacknowledged entries stay pending\n")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write at exit


class BadHandler(UsageError):
    """--handler names nothing that can be called as function(message_id, message): one line, exit 2."""

    def __init__(self, spec: str, why: str):
        super().__init__(f"--handler {spec}: {why}")


def load(spec: str):
    """The function `module:function` names, imported from the current directory or PYTHONPATH.

    Anything wrong (no colon, no such module, an error while importing it, no such function, not
    callable with (message_id, message)) is BadHandler, before anything is read.
    """
    import importlib
    import inspect

    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise BadHandler(spec, "use module:function, like examples.alerts:process")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `python consumer.py` puts the script's folder first, not the cwd
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):  # not one it imports
            raise BadHandler(spec, f"no module {exc.name!r} (looked in {os.getcwd()} and PYTHONPATH)") from None
        raise BadHandler(spec, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # the user's module raised while importing: their error, in one line
        raise BadHandler(spec, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    function = getattr(module, name, None)
    if function is None:
        raise BadHandler(spec, f"{module_name} has no {name!r}")
    if not callable(function):
        kind = type(function).__name__
        raise BadHandler(spec, f"it is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a function")
    try:
        inspect.signature(function).bind("1-0", {})
    except TypeError as exc:
        raise BadHandler(spec, f"it cannot be called as {name}(message_id, message): {exc}") from None
    except ValueError:  # a builtin without a signature: take it as it is
        pass
    return function
