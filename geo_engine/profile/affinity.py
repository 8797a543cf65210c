"""Category and channel affinity (seed 004: appetence for a product category, for a channel):
exponentially time-decayed weighted event counts.

An event of weight w at time t is worth w x 2^(-(now - t) / half_life) now. Stored as
w x 2^((t - ref) / half_life) for a fixed reference time `ref`: sums then never need a
per-event update as time passes (one multiplication at read time), late events simply add a
smaller term, and the order of arrival does not matter. When (now - ref) grows past
REBASE_HALF_LIVES half-lives, the owner rescales everything to a new ref (float64 stays far
from overflow).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.config import DAY_S
from geo_engine.profile.events import BehaviouralEvent, EventType

REBASE_HALF_LIVES = 200.0

# How much an event says about a category: buying says most, a page seen least.
CATEGORY_WEIGHTS: Mapping[EventType, float] = {
    EventType.PURCHASE: 5.0,
    EventType.CART_ADD: 3.0,
    EventType.PRODUCT_VIEW: 2.0,
    EventType.SEARCH: 1.5,
    EventType.PAGE_VIEW: 1.0,
    EventType.CLICK: 1.0,
    EventType.EMAIL_CLICK: 1.0,
    EventType.INFO_REQUEST: 2.0,
}
# Channel affinity: every event counts 1 on its channel, a purchase 3 (where they buy).
CHANNEL_PURCHASE_WEIGHT = 3.0


class Decay:
    """The decay of one kind of affinity: half-life and reference time."""

    def __init__(self, half_life_days: float, ref: float) -> None:
        self.half_life_s = half_life_days * DAY_S
        self.ref = ref

    def stored(self, weight: float, ts: float) -> float:
        return float(weight * math.exp2((ts - self.ref) / self.half_life_s))

    def stored_vec(
        self, weights: NDArray[np.float64], ts: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        out: NDArray[np.float64] = weights * np.exp2((ts - self.ref) / self.half_life_s)
        return out

    def factor(self, now: float) -> float:
        """Stored value x factor(now) = the value now."""
        return math.exp2((self.ref - now) / self.half_life_s)

    def needs_rebase(self, now: float) -> bool:
        return (now - self.ref) / self.half_life_s > REBASE_HALF_LIVES

    def rebase(self, now: float) -> float:
        """Move ref to now; returns the factor to multiply every stored value by."""
        k = self.factor(now)
        self.ref = now
        return k


def category_weight(event: BehaviouralEvent) -> float:
    return CATEGORY_WEIGHTS.get(event.type, 1.0)


def channel_weight(event: BehaviouralEvent) -> float:
    return CHANNEL_PURCHASE_WEIGHT if event.type is EventType.PURCHASE else 1.0


def add_categories(
    scores: dict[str, float], adds: Mapping[str, float], max_categories: int
) -> dict[str, float]:
    """Add stored-scale amounts; beyond `max_categories`, forget the weakest (bounded memory:
    a long tail of once-seen categories says little)."""
    for cat, v in adds.items():
        scores[cat] = scores.get(cat, 0.0) + v
    if len(scores) > max_categories:
        keep = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:max_categories]
        return dict(keep)
    return scores


def ranked(scores: Mapping[str, float], factor: float) -> list[tuple[str, float, float]]:
    """(category, score now, share of the total), strongest first."""
    total = sum(scores.values())
    if total <= 0.0 or not math.isfinite(total):
        return []
    out = [(c, v * factor, v / total) for c, v in scores.items()]
    out.sort(key=lambda r: (-r[1], r[0]))
    return out
