"""RFM: recency, frequency, monetary (seed 004), their quintile scores and named segments.

Definitions (purchases net of cancellations: a purchase_cancel removes its order):
- recency_days  = (as_of - time of the last purchase) / 86400, a float, days since last purchase
- frequency     = number of orders (distinct order ids) over the customer's whole history
- monetary_total = sum of the orders' amounts in the base currency (orders in a currency with
  no configured rate are counted in frequency and recency, not in money: `unconverted_orders`)
- monetary_average = monetary_total / converted orders
Mapping to lifetimes' `summary_data_from_transaction_data` (checked in tests/unit/test_rfm.py):
with freq="s" and include_first_transaction=True, lifetimes' frequency = our frequency,
monetary_value = our monetary_average, and (T - recency) / 86400 = our recency_days (lifetimes'
recency is the first-to-last purchase span, T the customer's age). With its defaults
(freq="D", first transaction excluded) frequency = distinct purchase days - 1, the BTYD
"repeat purchases".

Scores 1..5 are quintiles over the customers with at least one order: a value's mid-rank in
the sorted base, score = 1 + floor(5 x midrank / n) (capped at 5). Mid-ranks keep ties
together (a base where most have 1 order puts them all in one score). Recency is ranked by
the last purchase time (later = better), so cut points do not age with the clock. The sorted
arrays are refreshed periodically; a customer's own figures are always current, only the
base they are ranked against lags (by at most the refresh interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.config import DAY_S

F64 = NDArray[np.float64]

# First matching row wins. R = recency score; FM = ceil((F + M) / 2). Covers every buyer.
SEGMENT_RULES: tuple[tuple[str, str], ...] = (
    ("new", "frequency = 1 and recency_days <= 30: a first order, recently"),
    ("champions", "R >= 4 and FM >= 4: bought recently, often, much"),
    ("loyal", "R >= 3 and FM >= 3"),
    ("potential_loyalists", "R >= 3 and FM <= 2: recent, not yet frequent"),
    ("at_risk", "R <= 2 and FM >= 3: valuable, not seen lately"),
    ("hibernating", "R = 2 and FM <= 2"),
    ("lost", "R = 1 and FM <= 2"),
)
NO_PURCHASE_SEGMENT = "prospect"  # no order yet: no RFM
# "new" is absolute, not a quintile: one recent first order is new whatever the base looks like
NEW_CUSTOMER_DAYS = 30.0


@dataclass(frozen=True, slots=True)
class RfmFigures:
    orders: int
    converted_orders: int
    total: float  # base currency
    first_ts: float
    last_ts: float

    @property
    def unconverted_orders(self) -> int:
        return self.orders - self.converted_orders

    @property
    def average(self) -> float | None:
        return self.total / self.converted_orders if self.converted_orders else None

    def recency_days(self, as_of: float) -> float:
        return max(0.0, (as_of - self.last_ts) / DAY_S)


@dataclass(frozen=True, slots=True)
class RfmScores:
    r: int
    f: int
    m: int
    fm: int
    segment: str
    base_size: int  # buyers the scores rank against
    refreshed_at: float | None  # when that base was taken


def segment_of(r: int, fm: int, orders: int, recency_days: float) -> str:
    if orders == 1 and recency_days <= NEW_CUSTOMER_DAYS:
        return "new"
    if r >= 4 and fm >= 4:
        return "champions"
    if r >= 3:
        return "loyal" if fm >= 3 else "potential_loyalists"
    if fm >= 3:
        return "at_risk"
    return "hibernating" if r == 2 else "lost"


def quintile(sorted_base: F64, value: float) -> int:
    n = sorted_base.size
    if n == 0:
        return 3  # nobody to compare with: the middle
    lo = int(sorted_base.searchsorted(value, "left"))
    hi = int(sorted_base.searchsorted(value, "right"))
    mid = (lo + hi) / 2.0  # ties share the mid-rank; a value not in the base sits between
    return 1 + min(4, math.floor(5.0 * mid / n))


def quintiles(sorted_base: F64, values: F64) -> NDArray[np.int64]:
    """Vectorized `quintile`."""
    n = sorted_base.size
    if n == 0:
        return np.full(values.shape, 3, np.int64)
    lo = np.searchsorted(sorted_base, values, "left")
    hi = np.searchsorted(sorted_base, values, "right")
    return 1 + np.minimum(4, np.floor(5.0 * (lo + hi) / 2.0 / n)).astype(np.int64)


class RfmScorer:
    """Sorted snapshots of the buyers' last purchase time, order count and money."""

    def __init__(self) -> None:
        empty = np.empty(0, np.float64)
        self.last_ts: F64 = empty
        self.orders: F64 = empty
        self.money: F64 = empty
        self.refreshed_at: float | None = None
        self.changes = 0  # figure updates since the last refresh

    def refresh(self, last_ts: F64, orders: F64, money: F64, at: float) -> None:
        self.last_ts = np.sort(last_ts)
        self.orders = np.sort(orders)
        self.money = np.sort(money)
        self.refreshed_at = at
        self.changes = 0

    @property
    def size(self) -> int:
        return int(self.orders.size)

    def scores(self, fig: RfmFigures, as_of: float) -> RfmScores:
        r = quintile(self.last_ts, fig.last_ts)
        f = quintile(self.orders, float(fig.orders))
        m = quintile(self.money, fig.total)
        fm = (f + m + 1) // 2
        segment = segment_of(r, fm, fig.orders, fig.recency_days(as_of))
        return RfmScores(r, f, m, fm, segment, self.size, self.refreshed_at)


def figures_from_orders(ts: F64, amounts_base: F64) -> RfmFigures | None:
    """The definitions above on one customer's orders not cancelled (NaN amount: no rate).
    The reference the SQL aggregate in adapters/db/profiles.py implements."""
    if ts.size == 0:
        return None
    known = ~np.isnan(amounts_base)
    return RfmFigures(
        orders=int(ts.size),
        converted_orders=int(known.sum()),
        total=float(amounts_base[known].sum()),
        first_ts=float(ts.min()),
        last_ts=float(ts.max()),
    )
