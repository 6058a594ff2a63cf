"""Redis's replies as they come off the wire, without redis-py's per-entry dicts.

The consumer reads thousands of entries a second; turning each into a dict of bytes (what
redis-py does for XREADGROUP) and then into the handler's dict of str would be done twice. Here an
entry stays `[id, [field, value, field, value, ...]]` until it is decoded once, for the handler.

Raw shapes differ with the protocol: RESP3 answers XREADGROUP with a map {stream: entries},
RESP2 with a list [[stream, entries]]; XINFO answers a map or a flat list of pairs. An entry whose
data was trimmed away, re-read from the pending list, has nil or no fields.
"""

from __future__ import annotations

RAW = ("XREADGROUP", "XINFO STREAM", "XINFO GROUPS")  # the commands the consumer reads raw


def raw_replies(client) -> None:
    """Have this client (or cluster client) hand these commands' replies over as they are."""
    for command in RAW:
        client.set_response_callback(command, lambda response, **options: response)


def streams(reply) -> list[tuple[bytes, list]]:
    """[(stream key, [[id, fields], ...])] of an XREADGROUP reply in any shape; [] for nil."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(key, entries) for key, entries in reply]


def entries(reply) -> list:
    """The entries of a single-stream XREADGROUP reply."""
    found = streams(reply)
    return found[0][1] if found else []


def as_dict(reply) -> dict:
    """An XINFO reply (map, or flat list of pairs) as a dict with bytes keys."""
    if isinstance(reply, dict):
        return reply
    it = iter(reply)
    return dict(zip(it, it))


def group_info(groups_reply, group: bytes) -> dict | None:
    """One group of a raw XINFO GROUPS reply."""
    for found in groups_reply:
        info = as_dict(found)
        if info.get(b"name") == group:
            return info
    return None


class Undecodable(ValueError):
    """A field name or value that is not UTF-8."""


_utf8 = bytes.decode


def decode(fields) -> dict[str, str]:
    """An entry's fields as the handler gets them: a dict of str, decoded as UTF-8, or Undecodable.

    One bad byte makes this one entry undecodable, not the whole batch. It runs for every entry
    the consumer reads: the raw reply's flat list first, nothing per field but the decoding.
    """
    try:
        if type(fields) is list or not isinstance(fields, dict):  # (a raw reply: a flat list)
            it = map(_utf8, fields)
            return dict(zip(it, it))
        return {k.decode(): v.decode() for k, v in fields.items()}
    except UnicodeDecodeError:
        raise Undecodable(undecodable(fields)) from None


def undecodable(fields) -> str:
    """What is not valid UTF-8 in an entry, in words."""
    pairs = fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2])
    for name, value in pairs:
        for what, raw in (("the name of a field", name), (name.decode("utf-8", "backslashreplace"), value)):
            try:
                raw.decode()
            except UnicodeDecodeError:
                return f"{what} is not valid UTF-8"
    return "it is not valid UTF-8"


def as_bytes_dict(fields) -> dict[bytes, bytes]:
    """An entry's fields as a dict of bytes (to copy them, unchanged, to a dead-letter stream)."""
    if isinstance(fields, dict):
        return fields
    it = iter(fields)
    return dict(zip(it, it))
