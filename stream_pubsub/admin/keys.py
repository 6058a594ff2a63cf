"""Checking what a key holds before a command reads it: a stream, nothing, or a mistake."""

from __future__ import annotations

from ..telling import UserError


def is_stream(connection, key: str) -> bool:
    """True if the key holds a stream, False if it does not exist; any other type is an error."""
    return stream_kind(connection, key, connection.db.type(key))


def stream_kind(connection, key: str, kind) -> bool:
    """is_stream for the reply of a TYPE sent in a pipeline (or the error that came instead)."""
    if isinstance(kind, Exception):
        raise kind
    kind = kind.decode()
    if kind not in ("stream", "none"):
        raise UserError(f"the key {key!r} at {connection.where} holds a {kind}, not a stream; left untouched")
    return kind == "stream"


def held(connection, scope, *, dead_letters: bool = False) -> list:
    """The shards (scope.py) whose stream exists, or (dead_letters) whose dead-letter stream does:
    a shard nothing was added to yet has no key. A key of another type is an error."""
    return [shard for shard in scope.shards if is_stream(connection, shard.dlq if dead_letters else shard.key)]


def group_names(db, stream: str) -> list[str]:
    """The names of the stream's groups (XINFO GROUPS)."""
    return [g["name"].decode() for g in db.xinfo_groups(stream)]


def require_group(connection, stream: str, group: str) -> dict:
    """The group's XINFO GROUPS row; a missing stream or group is one line naming what exists."""
    if not is_stream(connection, stream):
        raise UserError(f"no stream {stream!r} at {connection.where} (nothing was added to it; is --stream right?)")
    groups = connection.db.xinfo_groups(stream)
    for found in groups:
        if found["name"].decode() == group:
            return found
    names = ", ".join(g["name"].decode() for g in groups) or "none"
    raise UserError(f"no group {group!r} on stream {stream!r} (its groups: {names})")


def shards_with_group(connection, scope, group: str) -> list:
    """The shards (scope.py) whose stream has the group; one line if none has, naming what exists.

    A shard that nothing was added to yet has no stream, hence no group: it is left out.
    """
    if not scope.sharded:
        require_group(connection, scope.shards[0].key, group)
        return list(scope.shards)
    found, names, streams = [], {}, held(connection, scope)
    for shard in streams:
        groups = group_names(connection.db, shard.key)
        names.update(dict.fromkeys(groups))
        if group in groups:
            found.append(shard)
    if found:
        return found
    if not streams:
        added = "any shard" if scope.whole else "it"
        raise UserError(
            f"no stream {scope.label} at {connection.where} (nothing was added to {added}; is --stream right?)"
        )
    raise UserError(f"no group {group!r} on stream {scope.label} (its groups: {', '.join(sorted(names)) or 'none'})")
