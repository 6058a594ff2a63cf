"""Passwords never reach the screen or a log: every URL and error text we print goes through here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print or log."""
    # Up to the last @: an unencoded / # ? or @ in a password must not leave part of it showing.
    url = re.sub(r"(?<=://)([^/@:]*):.*@", r"\1:***@", url)  # user:password@
    url = re.sub(r"(?<=://)(?!\*\*\*@)([^/:@][^:@]*)@", "***@", url)  # password-only form
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def scrub(text: str, url: str) -> str:
    """Remove the URL's secrets from an error text (redis-py may quote parts of the URL)."""
    parts = urlsplit(url) if "://" in url else None
    secrets = [parts.password] if parts and parts.password else []
    secrets += re.findall(r"(?i)password=([^&]+)", url)
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    # An unencoded # ? or / in a password splits the URL in the wrong place, and the error then
    # quotes a piece of it ("Port could not be cast to integer value as 's3c'"): mask every piece.
    if userinfo := re.match(r"[^:/]*://(.*)@", url):
        password = userinfo.group(1).partition(":")[2] or userinfo.group(1)
        for piece in sorted(filter(None, re.split(r"[#?/]", password)), key=len, reverse=True):
            text = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", "***", text)
    return text.replace(url, mask_url(url))


def where(url: str) -> str:
    """host:port of a URL for messages (never the password)."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return mask_url(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return mask_url(url)
