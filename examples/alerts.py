"""An alert for every reading hotter than a threshold: your own processing, with --fanout.

    python producer.py sensor1 --count 200 -q
    python consumer.py alerts a1 --handler examples.alerts:process --fanout app:alerts --start-from 0 --burst
    python consumer.py audit u1 --stream app:alerts --start-from 0 --burst    # a second group reads the alerts

The consumer calls process(message_id, message) once per entry of app:event, from the current
directory (or PYTHONPATH). ALERT_TEMP sets the threshold (readings' temp is random in [0, 1)).
"""

from __future__ import annotations

import os

from stream_pubsub.reading import check_reading

THRESHOLD = float(os.environ.get("ALERT_TEMP", "0.9"))


def process(message_id: str, message: dict[str, str]) -> dict[str, str] | None:
    # An invalid reading raises InvalidReading, a stream_pubsub.Unprocessable: retrying cannot
    # help, so the consumer moves it to the dead-letter stream (app:event:dlq) at once, with the
    # reason, and acknowledges it. Any other exception would leave the entry pending (no XACK):
    # it is delivered again, and dead-lettered after --max-deliveries.
    sensor_id, temp, humidity = check_reading(message)
    if temp <= THRESHOLD:
        return None  # nothing to publish: the reading is just acknowledged
    # Returned, not sent: the consumer XADDs it to the --fanout stream in the same MULTI/EXEC as
    # this reading's XACK. A consumer killed before that EXEC has added nothing and acknowledged
    # nothing: the reading is processed again, and its alert is added then, once. (Anything done
    # here, like sending an email, would happen again: only the return value is exactly once.)
    # The alert keeps the reading's fields, so the default consumer can print app:alerts too.
    return {
        "sensor_id": sensor_id,
        "temp": message["temp"],
        "humidity": message["humidity"],
        "reading_id": message_id,
        "threshold": str(THRESHOLD),
    }
