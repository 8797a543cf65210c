"""Velocity: the % change rules (zero baseline, thresholds, too few events), the sliding
windows of the day ring, crossings, and the scalar read path agreeing with the vectorized one."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_engine.profile.config import DAY_S, ProfileConfig
from geo_engine.profile.events import N_KPIS, BehaviouralEvent, Channel, EventType, Kpi
from geo_engine.profile.profile import build_profile
from geo_engine.profile.ring import DayRing, day_of
from geo_engine.profile.state import ProfileState
from geo_engine.profile.velocity import (
    FALLING,
    RISING,
    STABLE,
    classify,
    crossings,
    velocity,
)

CFG = ProfileConfig()
NOON = 20_000 * DAY_S + 0.5 * DAY_S  # a day's noon, UTC


def counts(*cols: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(latest, previous) arrays of one customer from per-KPI pairs (padded to 7 KPIs)."""
    lat = np.zeros((1, N_KPIS), np.float32)
    prev = np.zeros((1, N_KPIS), np.float32)
    for k, (a, b) in enumerate(cols):
        lat[0, k], prev[0, k] = a, b
    return lat, prev


def test_pct_change_and_trend_labels() -> None:
    lat, prev = counts((13, 10), (7, 10), (10, 10), (0, 4), (2, 0))
    v = velocity(lat, prev, CFG)
    assert v.pct[0, :4].tolist() == pytest.approx([30.0, -30.0, 0.0, -100.0])
    assert v.trend[0, :5].tolist() == [RISING, FALLING, STABLE, FALLING, STABLE]


def test_zero_baseline_is_null_with_new_activity() -> None:
    lat, prev = counts((3, 0), (0, 0), (1, 0))
    v = velocity(lat, prev, CFG)
    assert math.isnan(v.pct[0, 0]) and v.new_activity[0, 0] and v.trend[0, 0] == RISING
    assert math.isnan(v.pct[0, 1]) and not v.new_activity[0, 1] and v.trend[0, 1] == STABLE
    # one event from nothing is new activity, but too little to call a trend
    assert v.new_activity[0, 2] and v.trend[0, 2] == STABLE


def test_too_few_events_is_stable() -> None:
    lat, prev = counts((0, 2), (1, 1))
    v = velocity(lat, prev, CFG)
    assert v.pct[0, 0] == -100.0 and v.trend[0, 0] == STABLE  # 2 < min_events = 3


def test_interest_is_the_weighted_total() -> None:
    lat, prev = counts((1, 0), (10, 10), (0, 0), (0, 0), (1, 1))
    v = velocity(lat, prev, CFG)  # weights 5, 1, 2, 1, 5
    assert v.latest[0, 5] == 5 + 10 + 5 and v.previous[0, 5] == 10 + 5
    assert v.pct[0, 5] == pytest.approx(100 * 5 / 15)


def test_crossings_only_into_rising_or_falling() -> None:
    old = np.array([[0, 1, -1, 0, 1, -1]], np.int8)
    new = np.array([[1, 1, 0, -1, -1, -1]], np.int8)
    rows, cols = crossings(old, new)
    assert cols.tolist() == [0, 3, 4] and rows.tolist() == [0, 0, 0]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 500, allow_nan=False, width=32),
    st.floats(0, 500, allow_nan=False, width=32),
    st.floats(0, 20, allow_nan=False),
)
def test_scalar_read_path_agrees_with_vectorized(a: float, p: float, extra: float) -> None:
    lat, prev = counts((a, p))
    v = velocity(lat, prev, CFG)
    pct, new, trend = classify(float(lat[0, 0]), float(prev[0, 0]), a + p, CFG)
    assert trend == v.trend[0, 0] and new == v.new_activity[0, 0]
    assert (pct is None) == bool(np.isnan(v.pct[0, 0]))
    if pct is not None:
        assert pct == pytest.approx(float(v.pct[0, 0]), rel=1e-6)


def test_windows_slide_without_a_midnight_jump() -> None:
    """One event every day at noon. A window cut at midnight would drop from 7 to 6 at 00:00
    (a steady customer "falling" 14 % every morning); the sliding window moves by at most the
    share of one day's events per hour and never jumps."""
    ring = DayRing(N_KPIS, CFG.ring_days)
    today = day_of(NOON)
    ring.advance(today - 1)
    past = np.arange(today - 16, today - 1, dtype=np.int64)  # noon events, days before
    ring.add(np.zeros(past.size, np.int64), np.full(past.size, Kpi.PAGE_VIEW), past)
    values = []
    for step in range(0, 48 * 4 + 1):  # every 15 min over two days, from midnight
        now = (today - 1) * DAY_S + step * 900.0
        ring.advance(day_of(now))
        if (now / DAY_S) % 1.0 == 0.5:  # today's noon event arrives
            ring.add(np.zeros(1, np.int64), np.full(1, Kpi.PAGE_VIEW), np.full(1, day_of(now)))
        latest, _ = ring.windows(7, now)
        values.append(float(latest[0, Kpi.PAGE_VIEW]))
    assert min(values) >= 6.5 - 1e-4 and max(values) <= 7.5 + 1e-4
    drops = [a - b for a, b in itertools.pairwise(values) if b < a]
    assert max(drops) <= 900.0 / DAY_S + 1e-5  # smooth, midnight included


def test_window_counts_at_a_given_time() -> None:
    ring = DayRing(N_KPIS, CFG.ring_days)
    today = day_of(NOON)
    ring.advance(today)
    days = np.arange(today - 14, today, dtype=np.int64)  # one event on each of 14 past days
    ring.add(np.zeros(days.size, np.int64), np.full(days.size, Kpi.SEARCH), days)
    for hour in (0.0, 0.01, 6.0, 23.99):
        latest, previous = ring.windows(7, today * DAY_S + hour * 3600)
        f = hour / 24
        # latest: days today-1..today-6 whole + (1 - f) of today-7; previous: f of today-7,
        # today-8..today-13 whole, (1 - f) of today-14
        assert latest[0, Kpi.SEARCH] == pytest.approx(6 + (1 - f), abs=1e-5)
        assert previous[0, Kpi.SEARCH] == pytest.approx(f + 6 + (1 - f), abs=1e-5)


def test_ring_forgets_old_days_and_saturates() -> None:
    ring = DayRing(N_KPIS, 4, capacity=2)
    ring.advance(100)
    ring.add(np.array([0, 0, 1]), np.array([1, 1, 2]), np.array([100, 96, 99]))  # 96: too old
    assert ring.counts.sum() == 2
    ring.advance(103)  # days 100..102 cleared? no: 100 is still held (103-4 < 100)
    assert ring.counts[100 % 4, 0, 1] == 1 and ring.counts[99 % 4].sum() == 0
    ring.add(np.zeros(70_000, np.int64), np.zeros(70_000, np.int64), np.full(70_000, 103))
    assert ring.count(103, 0, 0) == 65535 and ring.counts[103 % 4, 0, 0] == 255
    ring.reserve(5)
    assert ring.capacity >= 5 and ring.counts[100 % 4, 0, 1] == 1
    assert ring.count(103, 0, 0) == 65535
    ring.advance(107)  # the day of the big count leaves: so does its side-table cell
    assert ring.count(103, 0, 0) == 0 and not ring.over


def test_ring_cells_past_a_byte_read_their_true_count() -> None:
    """One byte a cell, the side table past 254: windows and daily counts equal a plain
    16-bit count of the same events (the layout before)."""
    rng = np.random.default_rng(5)
    today = 20_000
    ring = DayRing(N_KPIS, 16, capacity=3)
    ring.advance(today)
    ref = np.zeros((16, 3, N_KPIS), np.int64)
    for _ in range(6):
        n = 900
        slots = rng.integers(0, 3, n)
        kpis = rng.choice([Kpi.PAGE_VIEW, Kpi.SEARCH], n).astype(np.int64)
        days = today - rng.integers(0, 3, n)
        ring.add(slots, kpis, days)
        np.add.at(ref, (days % 16, slots, kpis), 1)
    assert ring.over  # some cells did pass 255
    for (b, s, k), v in ring.over.items():
        assert v == ref[b, s, k] > 255
    now = today * DAY_S + 7 * 3600
    latest, previous = ring.windows(7, now)
    for sel in (np.array([2, 0]), np.array([1, 1, 2])):
        lat, prev = ring.windows(7, now, sel)
        assert np.array_equal(lat, latest[sel]) and np.array_equal(prev, previous[sel])
        daily = ring.daily(sel, now, 3).astype(np.int64)
        want = np.stack([ref[(today - i) % 16][sel] for i in range(3)])
        assert np.array_equal(daily, want)
    # every event is within the last 3 days: all of them in the latest window
    want_latest = ref[[(today - i) % 16 for i in range(3)]].sum(axis=0).astype(np.float32)
    assert np.array_equal(latest, want_latest)


def _event(cid: str, ts: float, t: EventType = EventType.PAGE_VIEW) -> BehaviouralEvent:
    return BehaviouralEvent(cid, t, ts, Channel.WEB, url="/x")


def test_state_sweep_finds_customers_who_stopped() -> None:
    state = ProfileState(CFG)
    evs = [_event("a", NOON - 3 * DAY_S + i) for i in range(5)]
    evs += [_event("b", NOON - i * DAY_S) for i in range(15)]
    plan = state.plan(evs, NOON)
    assert {(c.customer_id, c.figure) for c in plan.trends.crossings} == {
        ("a", "page_view"),
        ("a", "interest"),
    }  # a: 5 from nothing = rising; b steady
    state.apply(plan)
    assert state.sweep(NOON).crossings == []
    later = state.sweep(NOON + 8 * DAY_S)  # a's 5 views are now in the previous window
    assert {(c.customer_id, c.figure, c.trend) for c in later.crossings} == {
        ("a", "page_view", "falling"),
        ("a", "interest", "falling"),
        ("b", "page_view", "falling"),
        ("b", "interest", "falling"),
    }
    state.apply_trends(later)
    p = build_profile(state, "a", NOON + 8 * DAY_S)
    assert p is not None
    fig = {f.name: f for f in p.velocity.figures}["page_view"]
    assert (fig.latest, fig.previous, fig.pct_change, fig.trend) == (0.0, 5.0, -100.0, "falling")
    assert p.velocity.daily[:, Kpi.PAGE_VIEW].sum() == 5
    assert p.churn_risk == "medium"


def test_many_customers_at_once_equals_one_by_one() -> None:
    rng = np.random.default_rng(3)
    state = ProfileState(CFG)
    evs = [
        _event(f"c{rng.integers(50)}", NOON - float(rng.uniform(0, 14 * DAY_S)))
        for _ in range(2000)
    ]
    state.apply(state.plan(evs, NOON))
    now = NOON + 0.3 * DAY_S
    latest, previous = state.ring.windows(CFG.window_days, now)
    bulk = velocity(latest[: len(state)], previous[: len(state)], CFG)
    for cid, slot in state.slots.items():
        p = build_profile(state, cid, now)
        assert p is not None
        for i, f in enumerate(p.velocity.figures):
            assert f.latest == pytest.approx(float(bulk.latest[slot, i]), rel=1e-5, abs=1e-4)
            assert f.trend == {-1: "falling", 0: "stable", 1: "rising"}[int(bulk.trend[slot, i])]
