"""`make bench`: producer.py and consumer.py next to the tutorial's loops (`python -m tools.bench`).

sizes.py     what is measured with
tutorial.py  the tutorial's own loops
peers.py     FastStream, redis-benchmark, and reading alone
ours.py      our scripts, run as subprocesses
measure.py   the measurements
cluster.py   the cluster row: 3 masters, 12 shards, next to the single node
report.py    ratios, targets, the table
"""
