"""The names of every Prometheus metric of this project, in one place: admin.py metrics, the
consumer's and the producer's --metrics, monitoring/alerts.yml and the Grafana dashboard use them.

Where the data is what redis_exporter (`--check-streams`) already exports, the name, the type
and the labels are its own (`redis_stream_*`, labels db, stream, group, consumer), so its users'
panels and alerts work with ours unchanged. What it lacks is under one prefix, `stream_pubsub_`.

Labels: `db` is the database as redis_exporter writes it (`db0`); `stream` is the stream as the
scripts' --stream names it (the logical stream of a sharded one); `shard` (its number, from 0) is
there only where the stream is a shard of a sharded stream. The consumer's own metrics carry
stream, group and consumer (and shard), so they join the server's with `on(stream, group, consumer)`.

A counter's name is given as PromQL sees it (`..._total`); prometheus_client wants it without
the suffix (`family`). Nothing here imports prometheus_client: the scripts import this module
at start-up, and only a process that serves metrics pays for the client.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "stream_pubsub_"

# Seconds: from a millisecond up to minutes (a consumer that fell behind, or a handler that hangs).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
DELIVERY_BUCKETS = (1, 2, 3, 4, 5, 10, 20)


@dataclass(frozen=True)
class Metric:
    name: str  # as PromQL sees it
    kind: str  # gauge, counter, histogram or info
    help: str
    labels: tuple[str, ...] = ()  # besides `shard`, which only a shard has
    buckets: tuple[float, ...] = ()  # a histogram's

    @property
    def family(self) -> str:
        """The name prometheus_client is given (it adds _total to a counter, _info to an info)."""
        suffix = {"counter": "_total", "info": "_info"}.get(self.kind, "")
        return self.name.removesuffix(suffix)


STREAM, GROUP = ("db", "stream"), ("db", "stream", "group")
CONSUMER = (*GROUP, "consumer")

# -- what the server knows: admin.py metrics -----------------------------------------------------
# redis_exporter's own (exporter/streams.go), same names, types and labels. IDs are exported as
# their milliseconds, as redis_exporter does.
STREAM_LENGTH = Metric("redis_stream_length", "gauge", "The number of entries in the stream (XLEN)", STREAM)
RADIX_TREE_KEYS = Metric("redis_stream_radix_tree_keys", "gauge", "Radix tree keys count", STREAM)
RADIX_TREE_NODES = Metric("redis_stream_radix_tree_nodes", "gauge", "Radix tree nodes count", STREAM)
GROUPS = Metric("redis_stream_groups", "gauge", "Groups count of stream", STREAM)
FIRST_ENTRY_ID = Metric(
    "redis_stream_first_entry_id", "gauge", "The epoch timestamp (ms) of the first entry in the stream", STREAM
)
LAST_ENTRY_ID = Metric(
    "redis_stream_last_entry_id", "gauge", "The epoch timestamp (ms) of the last entry in the stream", STREAM
)
LAST_GENERATED_ID = Metric(
    "redis_stream_last_generated_id", "gauge", "The epoch timestamp (ms) of the last entry added to the stream", STREAM
)
MAX_DELETED_ID = Metric(
    "redis_stream_max_deleted_entry_id", "gauge", "The epoch timestamp (ms) of the last entry deleted (XDEL)", STREAM
)
ENTRIES_ADDED = Metric(
    "redis_stream_entries_added_total",
    "counter",
    "Every entry ever added to the stream, trimmed or not (Redis 7.0+)",
    STREAM,
)
GROUP_CONSUMERS = Metric("redis_stream_group_consumers", "gauge", "Consumers count of stream group", GROUP)
GROUP_PENDING = Metric(
    "redis_stream_group_messages_pending",
    "gauge",
    "Entries delivered to the group's consumers and not acknowledged yet",
    GROUP,
)
GROUP_LAST_DELIVERED_ID = Metric(
    "redis_stream_group_last_delivered_id", "gauge", "The epoch timestamp (ms) of the last delivered entry", GROUP
)
GROUP_ENTRIES_READ = Metric(
    "redis_stream_group_entries_read", "gauge", "Entries the group has read (Redis 7.0+)", GROUP
)
GROUP_LAG = Metric(
    "redis_stream_group_lag",
    "gauge",
    "Entries added to the stream that the group has not read yet (counted where the server cannot tell)",
    GROUP,
)
CONSUMER_PENDING = Metric(
    "redis_stream_group_consumer_messages_pending", "gauge", "Entries pending with this consumer", CONSUMER
)
CONSUMER_IDLE = Metric(
    "redis_stream_group_consumer_idle_seconds",
    "gauge",
    "Seconds since the consumer last read or claimed (tried to, on Redis 7.2+ and Valkey)",
    CONSUMER,
)
REDIS_UP = Metric("redis_up", "gauge", "1 if this scrape read everything from Redis; 0 if not (the reason: stderr)")

# What redis_exporter lacks.
SHARDS = Metric(f"{PREFIX}stream_shards", "gauge", "The number of shards of the stream (1: not sharded)", STREAM)
KEY_INFO = Metric(
    f"{PREFIX}stream_key_info",
    "info",
    "Where each stream key is: the key, its dead-letter key and the node holding it",
    (*STREAM, "key", "dead_letter", "node"),
)
OLDEST_PENDING_AGE = Metric(
    f"{PREFIX}group_oldest_pending_age_seconds",
    "gauge",
    "Seconds since the group's oldest pending entry was added (by its ID); absent when nothing is pending",
    GROUP,
)
OLDEST_PENDING_IDLE = Metric(
    f"{PREFIX}group_oldest_pending_idle_seconds",
    "gauge",
    "Seconds since the group's oldest pending entry was last delivered: a consumer's --claim-idle "
    "sweep takes it over within 1.5 x --claim-idle; absent when nothing is pending",
    GROUP,
)
MAX_DELIVERIES = Metric(
    f"{PREFIX}group_pending_max_deliveries",
    "gauge",
    "The highest delivery count among the group's 100 oldest pending entries",
    GROUP,
)
TRIMMED_UNREAD = Metric(
    f"{PREFIX}group_trimmed_unread",
    "gauge",
    "Entries trimmed (MAXLEN, XTRIM) from the stream before the group read them, while it is behind "
    "the stream's first entry (Redis 7.0+)",
    GROUP,
)
CONSUMER_INACTIVE = Metric(
    f"{PREFIX}group_consumer_inactive_seconds",
    "gauge",
    "Seconds since the consumer last got or acknowledged an entry (Redis 7.2+ and Valkey; absent before its first)",
    CONSUMER,
)
DEAD_LETTERS = Metric(f"{PREFIX}dead_letters", "gauge", "Entries in the stream's dead-letter stream", STREAM)
DEAD_LETTER_AGE = Metric(
    f"{PREFIX}dead_letters_newest_age_seconds",
    "gauge",
    "Seconds since the newest dead letter was added; absent when there is none",
    STREAM,
)

SERVER_SIDE = (
    STREAM_LENGTH,
    RADIX_TREE_KEYS,
    RADIX_TREE_NODES,
    GROUPS,
    FIRST_ENTRY_ID,
    LAST_ENTRY_ID,
    LAST_GENERATED_ID,
    MAX_DELETED_ID,
    ENTRIES_ADDED,
    GROUP_CONSUMERS,
    GROUP_PENDING,
    GROUP_LAST_DELIVERED_ID,
    GROUP_ENTRIES_READ,
    GROUP_LAG,
    CONSUMER_PENDING,
    CONSUMER_IDLE,
    SHARDS,
    KEY_INFO,
    OLDEST_PENDING_AGE,
    OLDEST_PENDING_IDLE,
    MAX_DELIVERIES,
    TRIMMED_UNREAD,
    CONSUMER_INACTIVE,
    DEAD_LETTERS,
    DEAD_LETTER_AGE,
    REDIS_UP,
)

# -- what a consumer knows: consumer.py --metrics -----------------------------------------------
ME = ("stream", "group", "consumer")  # and shard, where the entries came from one
OUTCOMES = ("processed", "failed", "dead_lettered", "claimed", "recovered", "trimmed", "fanout_added")

CONSUMER_ENTRIES = Metric(
    f"{PREFIX}consumer_entries_total",
    "counter",
    "Entries by outcome: processed (acknowledged), failed (left pending, retried later), dead_lettered, "
    "claimed (from an idle consumer), recovered (from its own pending list on start), trimmed (gone "
    "before it could read them), fanout_added (outputs added to the --fanout stream)",
    (*ME, "outcome"),
)
HANDLER_SECONDS = Metric(
    f"{PREFIX}consumer_handler_seconds", "histogram", "The handler's time per entry", ME, LATENCY_BUCKETS
)
END_TO_END_SECONDS = Metric(
    f"{PREFIX}consumer_end_to_end_seconds",
    "histogram",
    "From the entry's ID (the milliseconds Redis added it at) to its XACK, as make bench measures it",
    ME,
    LATENCY_BUCKETS,
)
DELIVERIES = Metric(
    f"{PREFIX}consumer_deliveries",
    "histogram",
    "How many times each entry it processed or retried had been delivered",
    ME,
    DELIVERY_BUCKETS,
)
CONSUMER_RECONNECTS = Metric(f"{PREFIX}consumer_reconnects_total", "counter", "Times it lost Redis and got it back", ME)
LAST_LOOP = Metric(
    f"{PREFIX}consumer_last_loop_timestamp_seconds", "gauge", "When its loop last turned (Unix time)", ME
)
LAST_ACK = Metric(f"{PREFIX}consumer_last_ack_timestamp_seconds", "gauge", "When it last acknowledged (Unix time)", ME)
LIVE = Metric(f"{PREFIX}consumer_live", "gauge", "1 while its loop turns within its bound (/livez 200), else 0", ME)
READY = Metric(f"{PREFIX}consumer_ready", "gauge", "1 while connected and reading its group (/readyz 200), else 0", ME)
SERVER_INFO = Metric(
    f"{PREFIX}server_info",
    "info",
    "What the script runs against: the server (redis or valkey) and its version",
    ("server", "version"),
)

# -- what a producer knows: producer.py --metrics -------------------------------------------------
SENT = Metric(f"{PREFIX}producer_sent_total", "counter", "Readings Redis stored (XADD answered)", ("stream",))
NOT_CONFIRMED = Metric(
    f"{PREFIX}producer_not_confirmed_total",
    "counter",
    "Readings stored but not confirmed by --wait-replicas replicas in time",
    ("stream",),
)
SEND_SECONDS = Metric(
    f"{PREFIX}producer_send_seconds", "histogram", "From sending an XADD to its answer", ("stream",), LATENCY_BUCKETS
)
PRODUCER_RECONNECTS = Metric(
    f"{PREFIX}producer_reconnects_total", "counter", "Times it lost Redis and got it back", ("stream",)
)

CONSUMER_SIDE = (
    CONSUMER_ENTRIES,
    HANDLER_SECONDS,
    END_TO_END_SECONDS,
    DELIVERIES,
    CONSUMER_RECONNECTS,
    LAST_LOOP,
    LAST_ACK,
    LIVE,
    READY,
    SERVER_INFO,
)
PRODUCER_SIDE = (SENT, NOT_CONFIRMED, SEND_SECONDS, PRODUCER_RECONNECTS, SERVER_INFO)
