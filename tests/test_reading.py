"""stream_pubsub/reading.py on its own: a reading the default consumer can use, and the reason it
gives for one it cannot (the text a dead letter carries)."""

from __future__ import annotations

import pytest

from stream_pubsub import Unprocessable
from stream_pubsub.reading import InvalidReading, check_reading, make_reading

GOOD = {"sensor_id": "sensor1", "temp": "0.53", "humidity": "0.12"}


def test_a_good_reading_is_its_three_values():
    assert check_reading(GOOD) == ("sensor1", 0.53, 0.12)
    assert check_reading({**GOOD, "temp": "1e-3", "humidity": "7", "note": "extra fields are fine"}) == (
        "sensor1",
        0.001,
        7.0,
    )
    assert check_reading({**GOOD, "sensor_id": "Zürich-3"})[0] == "Zürich-3"


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"sensor_id": "s1"}, "missing field(s): temp, humidity"),
        ({"temp": "0.5", "humidity": "0.5"}, "missing field(s): sensor_id"),
        ({}, "missing field(s): sensor_id, temp, humidity"),
        ({**GOOD, "sensor_id": "  "}, "sensor_id is empty"),
        ({**GOOD, "sensor_id": "s" * 1025}, "sensor_id is 1025 bytes (limit 1024)"),
        ({**GOOD, "sensor_id": "é" * 600}, "sensor_id is 1200 bytes (limit 1024)"),  # bytes, not characters
        ({**GOOD, "temp": "1" * 1025}, "temp is 1025 bytes (limit 1024)"),
        ({**GOOD, "temp": "hot"}, "temp is not a number: 'hot'"),
        ({**GOOD, "humidity": "x" * 100}, f"humidity is not a number: {'x' * 40!r}"),  # cut at 40
        ({**GOOD, "temp": "nan"}, "temp is not a finite number: nan"),
        ({**GOOD, "humidity": "inf"}, "humidity is not a finite number: inf"),
        ({**GOOD, "humidity": "-Infinity"}, "humidity is not a finite number: -inf"),
        ({**GOOD, "temp": ""}, "temp is not a number: ''"),
    ],
)
def test_a_reading_that_cannot_be_used_says_why(fields, reason):
    with pytest.raises(InvalidReading) as refused:
        check_reading(fields)
    assert str(refused.value) == reason


def test_an_invalid_reading_is_unprocessable():
    """So a handler that calls check_reading dead-letters it at once, with this reason."""
    assert issubclass(InvalidReading, Unprocessable) and issubclass(InvalidReading, ValueError)
    assert InvalidReading.reason == "invalid reading" and Unprocessable.reason == "unprocessable"


def test_the_producers_reading_is_a_good_one_unless_told_otherwise():
    reading = make_reading("sensor7")
    sensor, temp, humidity = check_reading(reading)
    assert sensor == "sensor7" and 0 <= temp < 1 and 0 <= humidity < 1
    assert make_reading("sensor7", {"temp": "hot"})["temp"] == "hot"
    with pytest.raises(InvalidReading):
        check_reading(make_reading("sensor7", {"temp": "hot"}))
