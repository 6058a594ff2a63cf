"""Which stream keys a command looks at: every shard of the logical stream, or the one --shard names.

admin.py never says how many shards a stream has: it reads the number the first producer or
consumer recorded (stream_pubsub/shards.py) and writes nothing. Each shard has its own stream key
and its own dead-letter key (in the same slot), and on a cluster its own node: every command
works key by key, because a command on keys of several slots is refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import shards
from ..telling import UsageError


@dataclass(frozen=True)
class Shard:
    index: int
    key: str  # its stream key
    dlq: str  # its dead-letter key


@dataclass(frozen=True)
class Scope:
    stream: str  # the logical stream (--stream)
    count: int  # how many shards it has
    dlq: str  # the logical dead-letter stream
    shards: tuple[Shard, ...]  # the ones to look at: all, or the one --shard names

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def whole(self) -> bool:
        return len(self.shards) == self.count

    @property
    def name(self) -> str:
        """The stream shown: the logical one, or with --shard the shard's key."""
        return self.stream if self.whole else self.shards[0].key

    @property
    def dlq_name(self) -> str:
        return self.dlq if self.whole else self.shards[0].dlq

    @property
    def label(self) -> str:
        """`app:event`, `app:event (12 shards)`, `app:event:{shard3-17} (shard 3 of 12)`."""
        if not self.sharded:
            return self.name
        return (
            f"{self.name} ({self.count} shards)"
            if self.whole
            else f"{self.name} (shard {self.shards[0].index} of {self.count})"
        )

    @property
    def dlq_label(self) -> str:
        return f"{self.dlq} ({self.count} shards)" if self.sharded and self.whole else self.dlq_name


def scope(connection, stream: str, *, shard: int | None = None, dlq: str | None = None) -> Scope:
    """The shards of `stream` as recorded in Redis (1 if nothing is), narrowed to `shard` if given."""
    with connection.errors(key=shards.record_key(stream)):
        count = shards.resolve(connection.db, stream, None, where=connection.where)
    if shard is not None and shard >= count:
        if count == 1:
            raise UsageError(f"--shard {shard}: {stream} at {connection.where} is not sharded (1 shard: --shard 0)")
        raise UsageError(
            f"--shard {shard}: {stream} at {connection.where} has {count} shards (--shard 0 to {count - 1})"
        )
    dlq = dlq or shards.default_dead_letters(stream, cluster=connection.cluster and count == 1)
    keys = shards.keys(stream, count)
    picked = range(count) if shard is None else [shard]
    return Scope(stream, count, dlq, tuple(Shard(i, keys[i], shards.companion(dlq, i, count)) for i in picked))
