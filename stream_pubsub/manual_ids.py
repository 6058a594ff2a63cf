"""An entry ID given by hand (`producer.py --id`): what Redis would refuse, what is likely a mistake,
and what Redis's refusal means, in the user's words.

An ID is <milliseconds>-<sequence>; each half is an unsigned 64-bit number, and every later entry
of the stream gets a greater ID.
"""

from __future__ import annotations

import time

MAX_ID_PART = 2**64 - 1  # each half of an ID, <milliseconds>-<sequence>, is an unsigned 64-bit number
DAY_MS = 86_400_000


def id_refused(entry_id: str) -> str | None:
    """Why a manual ID (`<ms>-<seq>`, `<ms>-*` or `<ms>`) cannot be used, or None.

    A number over 2**64-1 is no ID. An ID in the last millisecond there is, or with the last
    sequence, leaves no room after it: Redis gives every later entry a greater ID, and with
    18446744073709551615-18446744073709551615 in it the stream takes no entry ever again.
    """
    ms, _, seq = entry_id.partition("-")
    for part in (ms, seq):
        if part.isdigit() and int(part) > MAX_ID_PART:
            return f"{part} is over {MAX_ID_PART}, the largest number an ID can hold"
    if int(ms) == MAX_ID_PART:
        return f"{ms} is the last millisecond an ID can have: no later entry could be added but in that millisecond"
    if seq.isdigit() and int(seq) == MAX_ID_PART:
        return f"{seq} is the largest sequence there is: no later entry could be added in millisecond {ms}"
    return None


def id_warning(entry_id: str) -> str | None:
    """A sentence when a manual ID lies more than a day ahead of this machine's clock."""
    ahead = int(entry_id.partition("-")[0]) - time.time() * 1000
    if ahead <= DAY_MS:
        return None
    return (
        f"warning: ID {entry_id} is {ahead / DAY_MS:,.0f} days in the future: every later entry will get an ID after it"
    )


def id_error(text: str, entry_id: str) -> str | None:
    """What Redis's refusal of a manual ID means, in the user's words (None: another error)."""
    if "equal or smaller" in text:
        return (
            f"ID {entry_id} is not greater than the last ID in the stream; "
            "a manual ID must be greater than every ID before it"
        )
    if "greater than 0-0" in text:
        return "ID 0-0 is not allowed; the smallest ID is 0-1"
    return None
