"""Why each campaign did or did not win a decision: one `Trace` per campaign considered."""

from __future__ import annotations

from typing import NamedTuple


class Trace(NamedTuple):
    """Immutable like a frozen dataclass, built in a third of its time (a decision builds one
    per campaign it evaluates, on the ping path)."""

    campaign_id: str
    offer_id: str | None
    score: float  # expected value: offer value x propensity
    result: str  # chosen | holdout | control | the rule that stopped it | outranked
    steps: tuple[str, ...]
