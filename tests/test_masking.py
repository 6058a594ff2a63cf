"""stream_pubsub/masking.py on its own: no password reaches the screen, whatever characters it has.

A password may hold @ : / # or ? unencoded; redis-py then splits the URL in the wrong place and its
error quotes a piece of the password. mask_url, scrub and where are what every printed URL and
error goes through.
"""

from __future__ import annotations

import pytest
import redis

from stream_pubsub.masking import mask_url, scrub, where


@pytest.mark.parametrize(
    "url, masked",
    [
        ("redis://user:s3cret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://user:s3cret@host:6380", "rediss://user:***@host:6380"),
        ("redis://user:p@ss@host:6379/0", "redis://user:***@host:6379/0"),  # up to the last @
        ("redis://user:pa:ss@host/0", "redis://user:***@host/0"),
        ("redis://user:pa/ss@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:s3c#ret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://:s3c?ret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),  # no user name
        ("redis://s3cret@host:6379/0", "redis://***@host:6379/0"),  # the password-only form
        ("redis://host:6379/0?password=s3cret&db=1", "redis://host:6379/0?password=***&db=1"),
        ("redis://host/0?PASSWORD=s3cret", "redis://host/0?PASSWORD=***"),
        ("unix:///tmp/redis.sock?password=s3cret", "unix:///tmp/redis.sock?password=***"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),  # nothing to hide: as it was
    ],
)
def test_mask_url_hides_every_form_of_password(url, masked):
    assert mask_url(url) == masked
    assert "s3c" not in mask_url(url) and "ss@" not in mask_url(url)


@pytest.mark.parametrize("password", ["s3c#ret", "s3c?ret", "s3c/ret"])
def test_scrub_hides_the_piece_of_a_password_that_redis_py_quotes(password):
    """An unencoded # ? or / ends the host part early: redis-py reads `s3c` as the port, and says so."""
    url = f"redis://:{password}@host:6379/0"
    with pytest.raises(ValueError) as refused:
        redis.Redis.from_url(url).connection_pool.get_connection()
    assert "s3c" in str(refused.value)  # what would leak
    assert scrub(str(refused.value), url) == "Port could not be cast to integer value as '***'"


def test_scrub_hides_the_password_and_the_url_in_any_text():
    url = "redis://app:s3cret@db.example:6379/0"
    text = f"Error connecting to {url}: AUTH s3cret failed"
    assert scrub(text, url) == "Error connecting to redis://app:***@db.example:6379/0: AUTH *** failed"
    query = "redis://db.example:6379/0?password=qu3ry"
    assert (
        scrub(f"auth qu3ry refused for {query}", query) == "auth *** refused for redis://db.example:6379/0?password=***"
    )
    # a piece of a password the URL splits is masked as a word: what merely contains it stays readable
    assert scrub("port 's3c' of host s3cure", "redis://:s3c#ret@host/0") == "port '***' of host s3cure"
    assert scrub("nothing secret here", "redis://localhost:6379/0") == "nothing secret here"


@pytest.mark.parametrize(
    "url, said",
    [
        ("redis://user:s3cret@myhost:6380/0", "myhost:6380"),
        ("redis://myhost", "myhost:6379"),
        ("redis://", "localhost:6379"),
        ("rediss://:s3cret@10.0.0.7:6390", "10.0.0.7:6390"),
        # a URL that does not parse (the password's / ends the host part): the masked URL, not a piece of it
        ("redis://user:pa/ss@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:s3c#ret@host:6379/0", "redis://:***@host:6379/0"),
        ("unix:///tmp/redis.sock?password=s3cret", "unix:///tmp/redis.sock?password=***"),
    ],
)
def test_where_names_host_and_port_and_never_the_password(url, said):
    assert where(url) == said
