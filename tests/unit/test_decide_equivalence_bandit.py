"""The decision's fast path with a learned propensity (geo_engine/decision/bandit.py) against
the plain reference of test_decide_equivalence.py: any propensity on the plain book, and
Thompson draws on a book bounded by measured arms."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_engine.decision.bandit import (
    ArmStats,
    BanditConfig,
    Snapshot,
    decision_seed,
    draws_for,
)
from geo_engine.decision.book import Book
from geo_engine.decision.decide import decide
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.rules import pressure_of
from tests.unit.test_decide_equivalence import reference, worlds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(worlds(), worlds(contested=True)), st.integers(0, 2**32))
def test_learned_propensity_decision_matches_the_reference(w: dict[str, Any], seed: int) -> None:
    """Ranking "bandit": any propensity in [0, 1] per arm (here a pseudo-random one, 0 and 1
    included), above or below the static one: the rank-bound walk still picks what ranking
    every campaign picks."""

    def prop(cid: str, oid: str, static: float) -> float:
        u = decision_seed(str(seed), cid, oid) / 2**64
        return 0.0 if u < 0.05 else 1.0 if u > 0.95 else u

    ev = TriggerEvent(
        "presence",
        w["trigger"][0],
        w["customer"].customer_id,
        w["ts"],
        "pe:1",
        fence_id=w["trigger"][1],
        fence_kind="store",
        store_id=w["trigger"][1],
        source=w["trigger"][2],
        timezone="Europe/Paris",
    )
    book = Book(w["campaigns"], w["offers"])
    args = (w["suppressed"], w["cfg"], w["usage"])
    pressure = pressure_of(w["history"], ev.ts)
    cs, os_ = w["campaigns"], w["offers"]
    want = reference(ev, w["customer"], w["facts"], cs, os_, pressure, *args, prop)
    d = decide(ev, w["customer"], w["facts"], book, pressure, *args, prop)
    assert (d.outcome, d.campaign_id, d.offer_id, d.channel, d.send_after) == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    worlds(contested=True),
    st.integers(0, 2**32),
    st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 300)), min_size=60, max_size=60),
    st.sampled_from([True, True, False]),
)
def test_thompson_draws_on_a_bandit_book_match_the_reference(
    w: dict[str, Any], seed: int, counts: list[tuple[int, int]], explore: bool
) -> None:
    """Ranking "bandit" as the service runs it: the book's rank bounds come from the arms'
    outcomes (well below 1 once measured), the draws are capped at them; the walk that skips
    campaigns on those bounds picks what ranking every campaign with the same draws picks."""
    cs, os_ = w["campaigns"], w["offers"]
    arms = {}
    for k, arm in enumerate((c.id, o) for c in cs for o in c.offer_ids):
        sent, red = counts[k % len(counts)]
        if sent:  # some arms new (the prior only), the rest measured
            arms[arm] = ArmStats(sent, min(red, sent), (sent - min(red, sent)) // 3)
    bcfg = BanditConfig(prior_weight=10.0, click_weight=0.1, explore=explore)
    snap = Snapshot(arms)
    ev = TriggerEvent(
        "presence", "enter", w["customer"].customer_id, w["ts"], f"pe:{seed}",
        fence_id="opera", fence_kind="store", store_id="opera", timezone="Europe/Paris",
    )  # fmt: skip
    book = Book(cs, os_, snap, bcfg)
    args = (w["suppressed"], w["cfg"], w["usage"])
    pressure = pressure_of(w["history"], ev.ts)
    prop = draws_for(snap, bcfg, ev.customer_id, ev.instance)
    d = decide(ev, w["customer"], w["facts"], book, pressure, *args, prop)
    # the same draws (memoised); arms the walk skipped are drawn now, capped by their bound
    want = reference(ev, w["customer"], w["facts"], cs, os_, pressure, *args, prop)
    assert (d.outcome, d.campaign_id, d.offer_id, d.channel, d.send_after) == want
