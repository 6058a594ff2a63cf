"""producer.py --metrics ADDRESS: what a producer that runs on knows of its sends, for Prometheus.

    stream_pubsub_producer_sent_total           readings Redis stored (with --wait-replicas: and
                                                enough replicas confirmed)
    stream_pubsub_producer_not_confirmed_total  stored, but not on --wait-replicas replicas in time
    stream_pubsub_producer_send_seconds         from sending an XADD to its answer; in a pipelined
                                                batch, every reading counts the batch's round trip
    stream_pubsub_producer_reconnects_total     times Redis went away and came back

The counts are the Publisher's own (stream_pubsub/publishing.py), read at each scrape; the send
time is measured once per XADD or per batch, and only with --metrics (Publisher.timing).
"""

from __future__ import annotations

from . import metric_names as names
from .own_metrics import Histogram, counter, histograms, info, serve, server_info


class ProducerMetrics:
    def __init__(self, server, publisher, *, stream: str, shard: int | None, db):
        """stream: the logical stream; shard: the number of the shard the sensor's readings go to
        (None: the stream is not sharded)."""
        self.publisher = publisher
        self.labels = {"stream": stream} if shard is None else {"stream": stream, "shard": str(shard)}
        self.send_seconds = Histogram(names.SEND_SECONDS.buckets)
        self.server = server_info(db)
        publisher.timing = self.timed
        serve(server, self, {})

    def timed(self, readings: int, seconds: float) -> None:
        self.send_seconds.observe(seconds, readings)

    def collect(self):
        me, publisher = self.labels, self.publisher
        yield counter(names.SENT, me, publisher.sent)
        yield counter(names.NOT_CONFIRMED, me, publisher.unconfirmed)
        yield histograms(names.SEND_SECONDS, [(me, self.send_seconds)])
        yield counter(names.PRODUCER_RECONNECTS, me, publisher.reconnects)
        yield info(names.SERVER_INFO, self.server)
