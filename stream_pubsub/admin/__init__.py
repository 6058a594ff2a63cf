"""What admin.py's commands do, and their help; admin.py declares their options and prints what
they return: a document, as text (the module's render) or --json (output.py).

info.py       info: the stream, its groups and consumers
findings.py   info's warnings: what loses, or will lose, entries without a word
totals.py     info on a sharded stream: the shards' documents summed
watch.py      watch: the info view refreshed, with rates
pending.py    pending: what a group delivered that nobody acknowledged
history.py    range and tail: the stream's history, and entries as they arrive
dlq.py        dlq list / show / purge
replay.py     dlq replay: dead letters back on their stream, each in one MULTI/EXEC
groups.py     group create / rewind / delete / list
trim.py       trim: XTRIM that can keep what a group still needs
cleanup.py    cleanup: removing consumers that are gone, without orphaning their entries
metrics.py    metrics: the same for Prometheus, printed once or served (--serve ADDRESS)
scrape.py     what metrics reads at each scrape, shard by shard, pipelined per node
scope.py      which stream keys a command looks at: the shards (all, or --shard I)
keys.py       which keys exist and are streams, which shards have a group
output.py     the documents' convention; tables, durations, entries; long lists printed as they come
"""
