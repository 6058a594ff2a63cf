"""`admin.py trim`: the tutorial's scheduled XTRIM, saying what it removed that a group still needed
(or, with --safe, what it kept for that reason). The trimming itself is stream_pubsub/trimming.py.

A sharded stream is trimmed shard by shard, each as if it were the only one: --maxlen N keeps
the newest N entries of each shard (MAXLEN is what a producer caps each shard's XADD with), and
--minid, a time, means the same for every shard."""

from __future__ import annotations

from ..telling import say
from ..trimming import trim_stream
from . import keys
from .output import plural

# What `admin.py trim --help` says (admin.py declares the command and its options).
HELP = """Remove the oldest entries: the tutorial's scheduled XTRIM, with --safe to lose nothing.

\b
    python admin.py trim --maxlen 10000 --safe
    python admin.py trim --minid 1700000000000

Plain XTRIM removes entries whether the consumer groups have read them or not. With --safe
it keeps every entry some group has not been delivered yet or has not acknowledged, and says
how many it kept for that reason. Without --safe it says how many such entries it removed.
Entries added while it runs are never removed. A sharded stream is trimmed shard by shard,
each on its own: --maxlen N keeps the newest N of every shard (N x shards in all).
"""


def trim(connection, scope, *, maxlen: int | None, minid: str | None, safe: bool) -> dict:
    """The document of a trim: "shards", what the trim of each did, trimmed as it is read."""
    held = keys.held(connection, scope)

    def each():
        for shard in held:
            yield {"key": shard.key, **trim_stream(connection.db, shard.key, maxlen=maxlen, minid=minid, safe=safe)}

    return {
        "stream": scope.name,
        "at": connection.where,
        "exists": bool(held),
        "asked": f"--maxlen {maxlen}" if minid is None else f"--minid {minid}",
        "safe": safe,
        "shards": each(),
    }


def render(doc: dict, *, scope):
    """A line per stream key trimmed (on a whole sharded stream only where something happened,
    then the sum) and what --safe kept; on stderr, what was removed that a group still needed."""
    if not doc["exists"]:
        yield f"no stream {scope.label} at {doc['at']}: nothing to trim"
        return
    removed = left = 0
    for done in doc["shards"]:
        removed, left = removed + done["removed"], left + done["left"]
        if not scope.sharded or not scope.whole or done["removed"] or done["kept"] or done["needs"]:
            yield from trimmed(done, doc["asked"], doc["safe"], shard=scope.sharded)
    if scope.sharded and scope.whole:  # the shards where nothing happened were not named
        yield f"removed {plural(removed, 'entry')} from {scope.label} in all; {left} left"


def trimmed(done: dict, asked: str, safe: bool, *, shard: bool):
    """What the trim of one stream key did (one shard's key: named in the warning too)."""
    yield f"removed {plural(done['removed'], 'entry')} from {done['key']}; {done['left']} left"
    if safe and done["kept"]:
        needed = needs_text(done["needs"], "has")
        yield f"kept {plural(done['kept'], 'entry')} that {asked} would have removed, because {needed}"
    elif not safe and done["needs"]:
        removed = f"removed from {done['key']}" if shard else "removed"
        say(f"warning: of the entries {removed}, {needs_text(done['needs'], 'had')} (--safe keeps such entries)")


def needs_text(needs: list[dict], verb: str) -> str:
    """`group audit has not read 6; group group1 has not read 2 and not acknowledged 2`"""
    said = []
    for need in needs:
        parts = [f"read {need['unread']}"] * bool(need["unread"])
        parts += [f"acknowledged {need['unacknowledged']}"] * bool(need["unacknowledged"])
        said.append(f"group {need['group']} {verb} not {' and not '.join(parts)}")
    return "; ".join(said)
