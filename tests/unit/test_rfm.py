"""RFM against an established implementation (lifetimes' summary_data_from_transaction_data) on
the same transactions, quintile scores with ties, the segment table, and the currency list.

Definition mapping (ours <- lifetimes, freq="s", include_first_transaction=True):
  frequency         = frequency                      (orders)
  monetary_average  = monetary_value                 (mean order value)
  monetary_total    = frequency x monetary_value
  recency_days      = (T - recency) / 86400          (lifetimes' recency = first-to-last span,
                                                      T = age at the observation end)
With lifetimes' defaults (freq="D", first transaction excluded), its frequency is the number of
*repeat* purchase days: distinct purchase days - 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from geo_engine.profile.currencies import ISO_4217, PAYMENT_CURRENCIES, currency_problem
from geo_engine.profile.rfm import (
    SEGMENT_RULES,
    RfmFigures,
    RfmScorer,
    figures_from_orders,
    quintile,
    quintiles,
    segment_of,
)

DAY = 86_400.0
T_END = 1_780_000_000.0  # observation end, whole seconds


def transactions(seed: int = 11) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(40):
        n = int(rng.integers(1, 8))
        ts = np.unique(T_END - rng.integers(1, 400 * 86_400, n)).astype(float)  # distinct s
        for t in ts:
            rows.append((f"c{c}", float(t), round(float(rng.uniform(5, 300)), 2)))
    return rows


def test_rfm_matches_lifetimes_on_the_same_transactions() -> None:
    import pandas as pd  # test extra: the reference must run, never skip
    from lifetimes import utils

    rows = transactions()
    df = pd.DataFrame(rows, columns=["customer", "ts", "amount"])
    df["date"] = pd.to_datetime(df["ts"], unit="s")
    summary = utils.summary_data_from_transaction_data(
        df,
        "customer",
        "date",
        monetary_value_col="amount",
        observation_period_end=pd.to_datetime(T_END, unit="s"),
        freq="s",
        include_first_transaction=True,
    )
    for cid, g in df.groupby("customer"):
        ours = figures_from_orders(g["ts"].to_numpy(), g["amount"].to_numpy())
        assert ours is not None
        ref = summary.loc[cid]
        assert ours.orders == ref["frequency"]
        assert ours.average == pytest.approx(ref["monetary_value"], rel=1e-12)
        assert ours.total == pytest.approx(ref["frequency"] * ref["monetary_value"], rel=1e-12)
        assert ours.recency_days(T_END) == pytest.approx((ref["T"] - ref["recency"]) / DAY)
    # lifetimes' defaults: repeat purchase days
    daily = utils.summary_data_from_transaction_data(
        df, "customer", "date", observation_period_end=pd.to_datetime(T_END, unit="s")
    )
    for cid, g in df.groupby("customer"):
        days = np.unique(np.floor(g["ts"].to_numpy() / DAY)).size
        assert daily.loc[cid, "frequency"] == days - 1


def test_unconverted_orders_count_but_carry_no_money() -> None:
    fig = figures_from_orders(np.array([10.0, 20.0, 30.0]), np.array([5.0, np.nan, 15.0]))
    assert fig == RfmFigures(3, 2, 20.0, 10.0, 30.0)
    assert fig.average == 10.0 and fig.unconverted_orders == 1
    assert figures_from_orders(np.empty(0), np.empty(0)) is None


def test_quintiles_by_mid_rank_keep_ties_together() -> None:
    base = np.sort(np.array([1, 1, 1, 1, 1, 1, 2, 3, 5, 9], np.float64))
    assert quintile(base, 1.0) == 2  # six ties share mid-rank 3 of 10
    assert quintile(base, 9.0) == 5 and quintile(base, 2.0) == 4
    assert quintile(base, 100.0) == 5 and quintile(base, 0.0) == 1  # outside the base
    assert quintile(np.empty(0), 3.0) == 3
    vals = np.array([0.0, 1.0, 2.0, 3.0, 5.0, 9.0, 100.0])
    assert quintiles(base, vals).tolist() == [quintile(base, v) for v in vals]
    even = np.arange(100, dtype=np.float64)
    assert np.bincount(quintiles(even, even))[1:].tolist() == [20, 20, 20, 20, 20]


def test_scorer_ranks_recency_by_last_purchase_time() -> None:
    s = RfmScorer()
    last = np.array([T_END - d * DAY for d in range(10)])
    s.refresh(last, np.arange(1, 11, dtype=np.float64), np.linspace(10, 100, 10), T_END)
    recent = s.scores(RfmFigures(10, 10, 100.0, T_END - 99 * DAY, T_END), T_END)
    assert (recent.r, recent.f, recent.m, recent.segment) == (5, 5, 5, "champions")
    old = s.scores(RfmFigures(1, 1, 10.0, T_END - 9 * DAY, T_END - 9 * DAY), T_END + 60 * DAY)
    assert (old.r, old.fm, old.segment) == (1, 1, "lost")


def test_every_score_combination_has_exactly_one_segment() -> None:
    names = [n for n, _ in SEGMENT_RULES]
    seen = set()
    for r in range(1, 6):
        for fm in range(1, 6):
            for orders, rec in ((1, 5.0), (2, 5.0), (1, 90.0)):
                seg = segment_of(r, fm, orders, rec)
                assert seg in names
                seen.add(seg)
    assert seen == set(names)
    assert segment_of(5, 5, 1, 3.0) == "new" and segment_of(5, 5, 1, 45.0) == "champions"
    assert segment_of(2, 4, 7, 200.0) == "at_risk"


def test_currencies_are_iso_4217() -> None:
    assert currency_problem("EUR") is None and currency_problem("XOF") is None
    assert "upper case" in (currency_problem("eur") or "")
    assert "not a payment currency" in (currency_problem("XAU") or "")
    assert "not an ISO 4217" in (currency_problem("EUX") or "")
    import pycountry

    assert {c.alpha_3 for c in pycountry.currencies} == ISO_4217
    assert "EUR" in PAYMENT_CURRENCIES
