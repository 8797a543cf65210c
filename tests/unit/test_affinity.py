"""Category and channel affinity: exponential decay with a half-life, order independence,
rebasing, the category cap, and the preferred channel."""

from __future__ import annotations

import numpy as np
import pytest

from geo_engine.profile.affinity import Decay, add_categories, ranked
from geo_engine.profile.config import DAY_S, ProfileConfig
from geo_engine.profile.events import BehaviouralEvent, Channel, EventType
from geo_engine.profile.profile import build_profile
from geo_engine.profile.state import ProfileState

NOW = 1_780_000_000.0


def test_an_event_halves_every_half_life() -> None:
    d = Decay(30.0, ref=NOW - 400 * DAY_S)
    for age_days, expected in ((0, 1.0), (30, 0.5), (60, 0.25), (90, 0.125)):
        assert d.stored(1.0, NOW - age_days * DAY_S) * d.factor(NOW) == pytest.approx(expected)
    v = d.stored_vec(np.array([2.0, 2.0]), np.array([NOW, NOW - 30 * DAY_S])) * d.factor(NOW)
    assert v.tolist() == pytest.approx([2.0, 1.0])


def test_rebase_keeps_values() -> None:
    d = Decay(1.0, ref=NOW - 300 * DAY_S)
    stored = d.stored(3.0, NOW - DAY_S)
    assert d.needs_rebase(NOW)
    k = d.rebase(NOW)
    assert stored * k * d.factor(NOW) == pytest.approx(1.5)
    assert not d.needs_rebase(NOW)


def _ev(t: EventType, ts: float, ch: Channel, *cats: tuple[str, float]) -> BehaviouralEvent:
    return BehaviouralEvent("c", t, ts, ch, tuple(cats))


def test_profile_affinities_decay_and_rank() -> None:
    state = ProfileState(ProfileConfig(category_half_life_days=10.0), ref=NOW - 100 * DAY_S)
    events = [
        _ev(EventType.PAGE_VIEW, NOW - 20 * DAY_S, Channel.WEB, ("garden", 1.0)),
        _ev(EventType.PAGE_VIEW, NOW - 20 * DAY_S, Channel.WEB, ("garden", 1.0)),
        _ev(EventType.PURCHASE, NOW - DAY_S, Channel.STORE, ("shoes", 1.0)),
        _ev(EventType.PRODUCT_VIEW, NOW, Channel.APP, ("shoes", 1.0)),
        _ev(EventType.APP_OPEN, NOW, Channel.APP),
    ]
    late_first = list(reversed(events))  # arrival order does not matter
    a, b = ProfileState(state.cfg, ref=NOW - 100 * DAY_S), state
    a.apply(a.plan(late_first, NOW))
    b.apply(b.plan(events, NOW))
    pa, pb = build_profile(a, "c", NOW), build_profile(b, "c", NOW)
    assert pa is not None and pb is not None
    assert [(x.name, round(x.score, 9)) for x in pa.categories] == [
        (x.name, round(x.score, 9)) for x in pb.categories
    ]
    cats = {x.name: x.score for x in pb.categories}
    # garden: 2 page views x weight 1, two half-lives ago; shoes: purchase 5 a day ago + view 2
    assert cats["garden"] == pytest.approx(2 * 0.25)
    assert cats["shoes"] == pytest.approx(5 * 2 ** (-0.1) + 2)
    assert pb.categories[0].name == "shoes"
    assert sum(x.share for x in pb.categories) == pytest.approx(1.0)
    chans = {x.name: x.score for x in pb.channels}
    assert chans["app"] == pytest.approx(2.0)  # two app events today
    assert chans["store"] == pytest.approx(3 * 2 ** (-1 / 30))  # a purchase weighs 3
    assert pb.preferred_channel == "store"


def test_category_cap_forgets_the_weakest() -> None:
    scores = add_categories({}, {f"c{i}": float(i) for i in range(10)}, max_categories=4)
    assert sorted(scores) == ["c6", "c7", "c8", "c9"]
    assert [r[0] for r in ranked(scores, 1.0)] == ["c9", "c8", "c7", "c6"]
    assert ranked({}, 1.0) == []


def test_loading_more_customers_than_the_initial_capacity_keeps_every_value() -> None:
    """Loading grows the arrays while indexing them: each value must land in the grown array
    (it once went to the replaced one, or raised IndexError past 1,024 customers)."""
    state = ProfileState(ProfileConfig(), ref=NOW, capacity=4)
    n = 50
    state.load_affinity([(f"c{i}", 1, float(i + 1)) for i in range(n)], [])
    state.load_trends([(f"t{i}", [1] * state.trend.shape[1]) for i in range(n)])
    assert [float(state.channel[state.slot(f"c{i}"), 1]) for i in range(n)] == [
        float(i + 1) for i in range(n)
    ]
    assert all(
        int(state.trend[state.slot(f"t{i}")].sum()) == state.trend.shape[1] for i in range(n)
    )
