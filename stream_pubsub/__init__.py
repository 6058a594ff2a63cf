"""The machinery under producer.py, consumer.py and admin.py, one module per idea of the tutorial.

    connection.py    connecting to Redis; every failure said in one line; reconnecting with backoff
    masking.py       passwords never shown
    stopping.py      Ctrl-C and SIGTERM: a flag the loops check
    ids.py           stream IDs (<milliseconds>-<sequence>): what one looks like, counting ranges
    reading.py       a sensor reading: making one, checking one
    publishing.py    adding readings: what Redis stored or refused, the pipelined bulk path
    manual_ids.py    an entry ID given by hand (--id): what Redis would refuse, what looks like a mistake
    lost_replies.py  a reply lost with the connection: which readings Redis stored all the same
    settings.py      a consumer's settings, and every period derived from --claim-idle
    presence.py      one process per consumer name (CLIENT SETNAME / CLIENT LIST)
    group.py         a consumer group: creating it, noticing it is gone, re-reading own pending
    read_ahead.py    reading a shard one read ahead, each XACK riding with the next read
    claiming.py      claiming (XAUTOCLAIM) entries left idle, one at a time
    handler.py       your own processing (--handler module:function), and the default one
    processing.py    processing a batch: acknowledge, leave pending, or dead-letter each entry
    running.py       many entries in the handler at once (--concurrency), in order per sensor (--order-by)
    workers.py       the threads, or the event loop of an `async def` handler, that run them
    retrying.py      failures retried by the consumer after --retry-delays, its sensor waiting
    replies.py       Redis's replies as they come off the wire, decoded once for the handler
    shards.py        a logical stream as N stream keys (--shards): naming, routing, the record
    keeping.py       keeping slow work from being claimed, for at most --handler-timeout
    blocking_read.py the blocking read: waiting on all shards at once for new entries
    dead_letters.py  the dead-letter stream: an entry and its reason, with its XACK in one script
    trimming.py      what MAXLEN/XTRIM remove unread: counted, or kept with a safe trim
    status.py        a consumer's counts and status line
    telling.py       a line on stderr, or a UserError the scripts turn into their exit
    metric_names.py  the name of every Prometheus metric (admin.py metrics, --metrics), in one place
    metrics_http.py  serving metrics over HTTP on an ADDRESS (:9103), bound before anything else
    own_metrics.py   what a script measures of itself for --metrics: histograms a batch at a time, serving
    consumer_metrics.py  consumer.py --metrics: its counts, handler time, end-to-end latency, /livez, /readyz
    producer_metrics.py  producer.py --metrics: readings sent, not confirmed, send time, reconnects
    local_server.py  a private Redis-compatible server (tests, demo, benchmark, `make redis`)
    local_cluster.py a private Redis Cluster on loopback (tests, demo, benchmark, `make cluster`)
    admin/           what admin.py's commands do (info, watch, pending, range, tail, dlq, trim, cleanup,
                     metrics)

Nothing here imports the scripts or config.py: the package can be imported on its own.
"""


class Unprocessable(Exception):
    """Raise it in your handler for an entry that can never be processed, however often it is
    retried (a poison message): it is dead-lettered at once, with the exception's text as the reason.

    Any other exception means "this delivery failed": the entry stays pending and is retried.
    """

    reason = "unprocessable"
