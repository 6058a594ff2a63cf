"""A sensor reading: what the producer publishes and what the default consumer checks before using it.

A reading is a stream entry with three fields, as in the tutorial:
    sensor_id  a non-empty name      ("sensor1")
    temp       a finite number       ("0.53")
    humidity   a finite number       ("0.12")
Redis stores every field as bytes; the consumer decodes each entry's fields on their own, so one
bad byte makes one entry undecodable instead of breaking a whole batch.
"""

from __future__ import annotations

import math
import random

from . import Unprocessable

FIELDS = ("sensor_id", "temp", "humidity")
MAX_VALUE_BYTES = 1024  # a reading's values are short; anything longer is not a reading
_finite = math.isfinite


class InvalidReading(Unprocessable, ValueError):
    """The entry can never be processed, however often it is retried (a poison message)."""

    reason = "invalid reading"


def make_reading(sensor_id: str, fields: dict[str, str] | None = None) -> dict[str, str]:
    """A random reading, as the tutorial's producer makes it (temp and humidity in [0, 1)).

    `fields` replace or add fields: {"temp": "hot"} makes a reading no consumer can use.
    """
    reading = {"sensor_id": sensor_id, "temp": repr(random.random()), "humidity": repr(random.random())}
    return {**reading, **fields} if fields else reading


def check_reading(message: dict[str, str]) -> tuple[str, float, float]:
    """(sensor_id, temp, humidity) of a decoded entry, or InvalidReading saying what is wrong.

    The first part is the path every good reading takes, kept short because it runs for each
    one; only when something is off does `_what_is_wrong` work out the reason.
    """
    try:
        sensor_id, temp, humidity = message["sensor_id"], message["temp"], message["humidity"]
        if len(temp) <= MAX_VALUE_BYTES and len(humidity) <= MAX_VALUE_BYTES and _short(sensor_id):
            t, h = float(temp), float(humidity)
            if sensor_id.strip() and _finite(t) and _finite(h):
                return sensor_id, t, h
    except (KeyError, ValueError):
        pass
    raise InvalidReading(_what_is_wrong(message))


def _short(text: str) -> bool:
    return len(text) <= MAX_VALUE_BYTES if text.isascii() else len(text.encode()) <= MAX_VALUE_BYTES


def _what_is_wrong(message: dict[str, str]) -> str:
    missing = [name for name in FIELDS if name not in message]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    for name in FIELDS:
        size = len(message[name].encode())
        if size > MAX_VALUE_BYTES:
            return f"{name} is {size} bytes (limit {MAX_VALUE_BYTES})"
    if not message["sensor_id"].strip():
        return "sensor_id is empty"
    for name in ("temp", "humidity"):
        raw = message[name]
        try:
            value = float(raw)
        except ValueError:
            return f"{name} is not a number: {raw[:40]!r}"
        if not math.isfinite(value):
            return f"{name} is not a finite number: {value}"
    raise AssertionError(f"check_reading refused a valid reading: {message!r}")
