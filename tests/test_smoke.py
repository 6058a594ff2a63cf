"""The tutorial's first two commands, end to end, on every server."""

from conftest import run


def test_producer_then_consumer_burst(r, server):
    sent = run("producer.py", "sensor1", url=server.url)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("message ") and sent.stdout.rstrip().endswith(" sent")
    entry_id = sent.stdout.split()[1]
    assert r.xlen("app:event") == 1

    got = run("consumer.py", "group1", "c1", "--start-from", "0", "--burst", url=server.url)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(f"{entry_id} sensor1 temp=")
    group = r.xinfo_groups("app:event")[0]
    assert group["pending"] == 0
    assert group["last-delivered-id"].decode() == entry_id
