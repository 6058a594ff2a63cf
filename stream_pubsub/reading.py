"""A sensor reading: what the producer publishes and what the consumer checks before using it.

A reading is a stream entry with three fields, as in the tutorial:
    sensor_id  a non-empty name      ("sensor1")
    temp       a finite number       ("0.53")
    humidity   a finite number       ("0.12")
Redis stores every field as bytes; the consumer decodes them one by one, so one bad byte
makes one entry invalid instead of breaking a whole batch.
"""

from __future__ import annotations

import math
import random

FIELDS = (b"sensor_id", b"temp", b"humidity")
MAX_VALUE_BYTES = 1024  # a reading's values are short; anything longer is not a reading


class InvalidReading(ValueError):
    """The entry can never be processed, however often it is retried (a poison message)."""


def make_reading(sensor_id: str, fields: dict[str, str] | None = None) -> dict[str, str]:
    """A random reading, as the tutorial's producer makes it (temp and humidity in [0, 1)).

    `fields` replace or add fields: {"temp": "hot"} makes a reading no consumer can use.
    """
    reading = {"sensor_id": sensor_id, "temp": repr(random.random()), "humidity": repr(random.random())}
    return {**reading, **fields} if fields else reading


def parse_reading(fields: dict[bytes, bytes]) -> tuple[str, float, float]:
    """(sensor_id, temp, humidity) of an entry, or InvalidReading saying what is wrong.

    The first part is the path every good reading takes, kept short because it runs for each
    one; only when something is off does `_what_is_wrong` work out the reason.
    """
    try:
        sensor, temp, humidity = fields[b"sensor_id"], fields[b"temp"], fields[b"humidity"]
        if max(len(sensor), len(temp), len(humidity)) <= MAX_VALUE_BYTES:
            sensor_id, t, h = sensor.decode(), float(temp), float(humidity)
            if sensor_id.strip() and math.isfinite(t) and math.isfinite(h):
                return sensor_id, t, h
    except (KeyError, ValueError):  # UnicodeDecodeError is a ValueError
        pass
    raise InvalidReading(_what_is_wrong(fields))


def _what_is_wrong(fields: dict[bytes, bytes]) -> str:
    missing = [name.decode() for name in FIELDS if name not in fields]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    for name in FIELDS:
        if len(fields[name]) > MAX_VALUE_BYTES:
            return f"{name.decode()} is {len(fields[name])} bytes (limit {MAX_VALUE_BYTES})"
    try:
        sensor_id = fields[b"sensor_id"].decode()
    except UnicodeDecodeError:
        return "sensor_id is not valid UTF-8"
    if not sensor_id.strip():
        return "sensor_id is empty"
    for name in (b"temp", b"humidity"):
        raw = fields[name]
        try:
            value = float(raw)
        except ValueError:
            shown = raw[:40].decode("utf-8", "backslashreplace")
            return f"{name.decode()} is not a number: {shown!r}"
        if not math.isfinite(value):
            return f"{name.decode()} is not a finite number: {value}"
    raise AssertionError(f"parse_reading refused a valid reading: {fields!r}")
