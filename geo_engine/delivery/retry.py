"""What a gateway's answer makes of an outbox row: sent, retried later, dead, or expired.

- Retry: exponential backoff `base * 2^(attempt-1)` capped at `max`, with jitter, and never
  sooner than the provider's Retry-After; after `max_attempts` the row is a dead letter.
- Expiry: an offer is never sent late (../../README.md, "Guarantees"): a row past `expires_at`
  is expired, and so is a retry that could only happen after it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from geo_engine.delivery.config import RelayConfig

Outcome = Literal["sent", "retry", "dead"]  # what a gateway answers
RowStatus = Literal["sent", "pending", "dead", "expired"]  # the row's status after an attempt
AttemptOutcome = Literal["sent", "retry", "dead", "expired"]  # as delivery_attempts records it
EXPIRED = "expired"  # the error of a row that reached its expiry


def backoff_s(
    attempt: int, cfg: RelayConfig, rng: random.Random, retry_after: float | None = None
) -> float:
    """Delay before the attempt after `attempt` (1-based)."""
    d = min(cfg.backoff_max_s, cfg.backoff_base_s * 2.0 ** max(0, attempt - 1))
    d *= 1.0 - cfg.jitter * rng.random()
    if retry_after is not None:
        d = max(d, retry_after)
    return d


@dataclass(frozen=True, slots=True)
class Step:
    status: RowStatus  # the row's next status
    outcome: AttemptOutcome  # the attempt's
    error: str | None
    next_at: float | None  # unix s of the next attempt (kept on a retry that expires too)


def step_after(
    outcome: Outcome,
    error: str | None,
    retry_after_s: float | None,
    *,
    attempt: int,
    expires_at: float,
    now: float,
    cfg: RelayConfig,
    rng: random.Random,
) -> Step:
    """The row's next step after attempt `attempt` answered `outcome` (with `error`)."""
    if outcome == "sent":
        return Step("sent", "sent", error, None)
    # the gateway saw the expiry before sending, or a retry is due no sooner than it
    if error == EXPIRED or (outcome == "retry" and expires_at <= now):
        return Step("expired", "expired", EXPIRED, None)
    if outcome == "retry" and attempt < cfg.max_attempts:
        next_at = now + backoff_s(attempt, cfg, rng, retry_after_s)
        if next_at >= expires_at:  # it could only arrive too late
            return Step("expired", "expired", f"expired (last: {error})", next_at)
        return Step("pending", "retry", error, next_at)
    return Step("dead", "dead", error, None)
