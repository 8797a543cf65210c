"""Why each campaign did or did not win a decision: one `Trace` per campaign considered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Trace:
    campaign_id: str
    offer_id: str | None
    score: float  # expected value: offer value x propensity
    result: str  # chosen | holdout | control | the rule that stopped it | outranked
    steps: tuple[str, ...]
