"""Velocity (seed 000): the % change of a customer's interest between the latest window and the
one before, for many customers at once, and the crossings into rising/falling that trigger
campaigns.

Per KPI, with L = count in the latest window and P = count in the previous one:
- P > 0: pct = (L - P) / P x 100.
- P = 0 (zero baseline): pct is undefined, returned as NaN (null in JSON), with
  `new_activity` = L > 0. No division by zero, and no made-up "+inf %".
- trend: with fewer than `min_events` events in L + P together (unweighted), "stable": too
  little to say anything. Otherwise "rising" when pct >= rising_pct or (P = 0 and L > 0),
  "falling" when pct <= falling_pct, else "stable".
- interest = sum of weight x count over the five velocity KPIs; its support (for min_events)
  is the unweighted event count.
A crossing is a customer's trend on a KPI becoming rising or falling when it was not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.events import VELOCITY_KPIS

FALLING, STABLE, RISING = -1, 0, 1
TREND_NAMES: dict[int, str] = {FALLING: "falling", STABLE: "stable", RISING: "rising"}
N_VELOCITY = len(VELOCITY_KPIS) + 1  # the five KPIs and "interest"

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Velocity:
    """For n customers x the six velocity figures (five KPIs, then interest)."""

    latest: F32  # (n, 6) counts in the latest window (interest: weighted)
    previous: F32  # (n, 6)
    pct: F32  # (n, 6) NaN where previous == 0
    new_activity: NDArray[np.bool_]  # (n, 6) previous == 0 and latest > 0
    trend: NDArray[np.int8]  # (n, 6) FALLING / STABLE / RISING


@dataclass(frozen=True, slots=True)
class Crossing:
    """A customer's trend on one velocity figure crossed into rising or falling."""

    customer_id: str
    figure: str  # store_visit, page_view, search, click, purchase, interest
    previous_trend: str
    trend: str
    latest: float
    previous: float
    pct_change: float | None  # None: zero baseline
    as_of: float
    window_days: int


@dataclass(frozen=True, slots=True)
class TrendUpdate:
    slots: I64  # customers whose trends changed
    trends: NDArray[np.int8]  # (n, 6) their new trends
    crossings: list[Crossing]

    def rows(self, ids: Sequence[str]) -> list[tuple[str, list[int]]]:
        """(customer id, trends) to persist."""
        return [(ids[s], t.tolist()) for s, t in zip(self.slots.tolist(), self.trends, strict=True)]


def velocity(latest_kpis: F32, previous_kpis: F32, cfg: ProfileConfig) -> Velocity:
    """`latest_kpis`/`previous_kpis`: (n, >=5) window counts whose first five columns are the
    velocity KPIs in VELOCITY_KPIS order (the ring's layout)."""
    k = len(VELOCITY_KPIS)
    lat = latest_kpis[:, :k]
    prev = previous_kpis[:, :k]
    w = np.asarray(cfg.interest_weights, np.float32)
    latest = np.concatenate([lat, (lat @ w)[:, None]], axis=1)
    previous = np.concatenate([prev, (prev @ w)[:, None]], axis=1)
    support = np.concatenate([lat + prev, (lat + prev).sum(axis=1, keepdims=True)], axis=1)
    has_base = previous > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pct = np.where(has_base, (latest - previous) / previous * 100.0, np.nan)
    pct = pct.astype(np.float32)
    new_activity = ~has_base & (latest > 0)
    # a little slack: counts at the sliding edges are fractions, 2.9999 events are 3
    enough = support >= cfg.min_events - 1e-4
    trend = np.zeros(latest.shape, np.int8)
    rising = enough & (new_activity | (has_base & (pct >= cfg.rising_pct)))
    falling = enough & has_base & (pct <= cfg.falling_pct)
    trend[rising] = RISING
    trend[falling] = FALLING
    return Velocity(latest, previous, pct, new_activity, trend)


def crossings(
    previous_trend: NDArray[np.int8], trend: NDArray[np.int8]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(rows, figure columns) where the trend crossed into rising or falling. Pure and
    vectorized: the decision module can call it on any two trend arrays of one shape."""
    rows, cols = np.nonzero((trend != STABLE) & (trend != previous_trend))
    return rows.astype(np.int64), cols.astype(np.int64)


def classify(
    latest: float, previous: float, support: float, cfg: ProfileConfig
) -> tuple[float | None, bool, int]:
    """(pct or None, new_activity, trend) of one figure: the rules of `velocity` for a single
    value, in plain Python (a profile read must not pay numpy's per-call cost ~30 times).
    tests/unit/test_velocity.py checks both agree."""
    if previous > 0:
        with np.errstate(over="ignore"):  # a tiny edge fraction as baseline: +inf %
            pct: float | None = float(np.float32((latest - previous) / previous * 100.0))
        new = False
    else:
        pct, new = None, latest > 0
    if support < cfg.min_events - 1e-4:
        return pct, new, STABLE
    if new or (pct is not None and pct >= cfg.rising_pct):
        return pct, new, RISING
    if pct is not None and pct <= cfg.falling_pct:
        return pct, new, FALLING
    return pct, new, STABLE
