"""stream_pubsub/settings.py on its own: a consumer's settings, built once, and every period that
follows from --claim-idle."""

from __future__ import annotations

import dataclasses

import pytest

from stream_pubsub.settings import HANDLER_TIMEOUT_FACTOR, MIN_CLAIM_IDLE, Settings


def settings(**changes) -> Settings:
    given = dict(
        group="group1",
        name="c1",
        count=100,
        block_ms=2000,
        burst=False,
        claim_idle_ms=30_000,
        max_deliveries=5,
        handler_timeout_ms=150_000,
        fail_rate=0.0,
        stats_interval=10.0,
    )
    return Settings(**{**given, **changes})


@pytest.mark.parametrize(
    "claim_idle_ms, claim_every, refresh_every, held_long",
    [(30_000, 15.0, 10.0, 30.0), (3000, 1.5, 1.0, 3.0), (MIN_CLAIM_IDLE, 0.05, 1 / 30, 0.1)],
)
def test_the_periods_follow_from_claim_idle(claim_idle_ms, claim_every, refresh_every, held_long):
    """Claim every half of --claim-idle (an entry abandoned just after a claim waits 1.5 x at most);
    refresh what is in hand every third (twice before it could be claimed)."""
    s = settings(claim_idle_ms=claim_idle_ms)
    assert s.claim_every == pytest.approx(claim_every)
    assert s.refresh_every == pytest.approx(refresh_every)
    assert s.held_long == pytest.approx(held_long)
    assert s.refresh_every < s.claim_every < s.held_long
    assert 2 * s.refresh_every < claim_idle_ms / 1000  # two refreshes before anyone may claim it


def test_the_handler_timeout_is_in_seconds():
    assert settings(handler_timeout_ms=150_000).handler_timeout == 150.0
    assert HANDLER_TIMEOUT_FACTOR == 5  # consumer.py's default: 5 x --claim-idle


def test_settings_are_built_once_and_named():
    s = settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.count = 10
    with pytest.raises(TypeError):
        Settings("group1", "c1", 100, 2000, False, 30_000, 5, 150_000, 0.0, 10.0)  # keyword-only: each one named
    assert dataclasses.replace(s, count=10).count == 10 and s.count == 100
