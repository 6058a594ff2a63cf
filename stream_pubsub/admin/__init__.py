"""What admin.py's commands do; admin.py itself declares their options and help.

info.py      info: the stream, its groups and consumers, and what looks wrong
watch.py     watch: the info view refreshed, with rates
pending.py   pending: what a group delivered that nobody acknowledged
history.py   range and tail: the stream's history, and entries as they arrive
dlq.py       dlq list / show / replay / purge
cleanup.py   cleanup: removing consumers that are gone, without orphaning their entries
keys.py      checking that a key is a stream and a group exists
output.py    tables, durations, entries as text and as JSON
"""
