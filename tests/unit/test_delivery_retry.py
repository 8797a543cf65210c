"""What a gateway's answer makes of an outbox row (geo_engine/delivery/retry.py), pure: sent,
retried after an exponential backoff with jitter (never before Retry-After), dead after the
last attempt, expired rather than sent late."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo_engine.delivery.config import RelayConfig
from geo_engine.delivery.retry import Outcome, Step, backoff_s, step_after

CFG = RelayConfig(max_attempts=4, backoff_base_s=10.0, backoff_max_s=100.0, jitter=0.2)
NOW = 1_000_000.0
FAR = NOW + 86_400.0


def step(
    outcome: Outcome,
    error: str | None = None,
    retry_after: float | None = None,
    *,
    attempt: int = 1,
    expires_at: float = FAR,
    seed: int = 1,
) -> Step:
    return step_after(
        outcome,
        error,
        retry_after,
        attempt=attempt,
        expires_at=expires_at,
        now=NOW,
        cfg=CFG,
        rng=random.Random(seed),
    )


@given(
    attempt=st.integers(1, 20),
    seed=st.integers(0, 2**32),
    retry_after=st.none() | st.floats(0, 10_000),
)
def test_backoff_doubles_is_capped_jittered_and_honours_retry_after(
    attempt: int, seed: int, retry_after: float | None
) -> None:
    nominal = min(CFG.backoff_max_s, CFG.backoff_base_s * 2 ** (attempt - 1))
    d = backoff_s(attempt, CFG, random.Random(seed), retry_after)
    assert d >= nominal * (1 - CFG.jitter) - 1e-9
    if retry_after is None:
        assert d <= nominal
    else:
        assert d == max(retry_after, backoff_s(attempt, CFG, random.Random(seed)))


def test_sent_is_final() -> None:
    assert step("sent") == Step("sent", "sent", None, None)


def test_a_retry_is_pending_until_its_backoff() -> None:
    s = step("retry", "http_503", attempt=2, seed=7)
    assert (s.status, s.outcome, s.error) == ("pending", "retry", "http_503")
    assert s.next_at == NOW + backoff_s(2, CFG, random.Random(7))


def test_retry_after_postpones_the_next_attempt() -> None:
    s = step("retry", "http_429", 500.0)
    assert s.next_at == NOW + 500.0


def test_the_last_attempt_makes_a_dead_letter() -> None:
    assert step("retry", "http_503", attempt=CFG.max_attempts) == Step(
        "dead", "dead", "http_503", None
    )


def test_a_dead_answer_is_final() -> None:
    assert step("dead", "http_400") == Step("dead", "dead", "http_400", None)


def test_a_retry_due_after_the_expiry_is_expired_not_sent_late() -> None:
    s = step("retry", "http_503", 500.0, expires_at=NOW + 100.0)
    assert s == Step("expired", "expired", "expired (last: http_503)", NOW + 500.0)


@pytest.mark.parametrize("expires_at", [NOW - 1.0, NOW])
def test_a_retry_past_the_expiry_is_expired(expires_at: float) -> None:
    assert step("retry", "timeout", expires_at=expires_at) == Step(
        "expired", "expired", "expired", None
    )


def test_expired_before_sending_is_expired() -> None:
    """The relay's own check before calling the gateway answers dead with error `expired`."""
    assert step("dead", "expired") == Step("expired", "expired", "expired", None)
