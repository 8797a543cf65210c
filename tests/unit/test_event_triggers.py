"""Behavioural-event triggers, pure: the trigger model (event, in_store, near_store_m), the
book's matching, and where the customer is (store inside, nearest store, fresh fix)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.models import Trigger, parse_campaign, parse_offer
from geo_engine.decision.triggers import (
    Needs,
    event_instance,
    event_trigger,
    fresh_fix,
    locate,
    nearest_store,
    needs_of,
    store_inside,
)
from geo_engine.models import CustomerCursor, FenceState
from geofences.index import FenceIndex
from geofences.validation import fence_from_feature
from tests.helpers import LAT0, LON0, circle_feature, offset, square_feature
from tests.unit.test_decision import TUE_11, book, campaign_doc, customer, offer_doc, run


def _index() -> FenceIndex:
    feats = [
        square_feature("opera", name="Opéra", store_id="s-opera"),
        square_feature("zone", *offset(LAT0, LON0, 0, 2000), kind="zone", store_id="s-zone"),
        square_feature("louvre", *offset(LAT0, LON0, 0, 1000), name="Louvre", store_id="s-lv"),
        square_feature("rival", *offset(LAT0, LON0, 0, 300), kind="competitor", store_id=None),
    ]
    return FenceIndex.build([fence_from_feature(f) for f in feats])


SEARCH_IN_STORE = {"type": "event", "event": "search", "in_store": True}
CART_NEAR = {"type": "event", "event": "cart_abandon", "near_store_m": 500}


def test_event_trigger_parsed_and_checked() -> None:
    offers = {"o1": parse_offer(offer_doc())}
    c = parse_campaign(campaign_doc(triggers=[SEARCH_IN_STORE, CART_NEAR]), offers)
    assert c.triggers == (
        Trigger("event", "search", in_store=True),
        Trigger("event", "cart_abandon", near_store_m=500.0),
    )
    # the older spelling still reads
    legacy = parse_campaign(
        campaign_doc(triggers=[{"type": "event", "event_type": "click"}]), offers
    )
    assert legacy.triggers[0].name == "click"
    bad = [
        ({"type": "event", "event": "teleport"}, "triggers.0.event"),
        ({"type": "event"}, "triggers.0.event_type"),
        ({"type": "event", "event": "store_visit"}, "triggers.0.event"),  # presence-made only
        ({**CART_NEAR, "near_store_m": 0}, "triggers.0.near_store_m"),
        ({**CART_NEAR, "near_store_m": -5}, "triggers.0.near_store_m"),
        ({**CART_NEAR, "near_store_m": 50_001}, "triggers.0.near_store_m"),
        ({**CART_NEAR, "near_store_m": "far"}, "triggers.0.near_store_m"),
    ]
    for trig, field in bad:
        with pytest.raises(InvalidDefinition) as e:
            parse_campaign(campaign_doc(triggers=[trig]), offers)
        assert e.value.field == field, trig


def test_book_matches_in_store_and_distance() -> None:
    b = book(
        campaign_doc("shw", triggers=[SEARCH_IN_STORE]), campaign_doc("cart", triggers=[CART_NEAR])
    )

    def ids(name: str, **kw: Any) -> list[str]:
        return [
            c.id for c in b.candidates(event_trigger("alice", name, TUE_11, "ev:1", None, **kw))
        ]

    assert ids("search", in_store=False) == []
    assert ids("search", in_store=True) == ["shw"]
    assert ids("cart_abandon", in_store=False) == []  # no distance known: not near
    near = nearest_store(_index(), *offset(LAT0, LON0, 0, 400), 500)
    assert near is not None
    ev = event_trigger("alice", "cart_abandon", TUE_11, "ev:2", near, in_store=False)
    assert [c.id for c in b.candidates(ev)] == ["cart"]
    far = nearest_store(_index(), *offset(LAT0, LON0, 0, 3000), 5000)
    assert far is not None and far.distance_m > 500
    ev = event_trigger("alice", "cart_abandon", TUE_11, "ev:3", far, in_store=False)
    assert b.candidates(ev) == ()  # the cached shape of the near one is not reused
    assert [t.near_store_m for t in b.triggers("event", "cart_abandon")] == [500.0]


def test_store_inside_skips_non_store_fences_and_takes_the_latest() -> None:
    idx = _index()
    inside = {"zone": FenceState(10.0, 10.0), "rival": FenceState(20.0, 20.0)}
    assert store_inside(inside, idx) is None
    inside["opera"] = FenceState(5.0, 30.0)
    inside["louvre"] = FenceState(8.0, 30.0)
    s = store_inside(inside, idx)
    assert s is not None and (s.fence_id, s.name, s.store_id, s.distance_m) == (
        "louvre",
        "Louvre",
        "s-lv",
        0.0,
    )
    assert store_inside({"gone": FenceState(1.0, 1.0)}, idx) is None


def test_nearest_store_measures_to_the_boundary() -> None:
    idx = _index()
    # 400 m east of the Opéra centre: 350 m from its edge (50 m half side), 550 from the Louvre
    s = nearest_store(idx, *offset(LAT0, LON0, 0, 400), 1000)
    assert s is not None and s.fence_id == "opera"
    assert s.distance_m == pytest.approx(350, abs=3)
    assert nearest_store(idx, *offset(LAT0, LON0, 0, 400), 300) is None
    s = nearest_store(idx, LAT0, LON0, 10)
    assert s is not None and (s.fence_id, s.distance_m) == ("opera", 0)
    empty = FenceIndex.build([])
    assert nearest_store(empty, LAT0, LON0, 50_000) is None


def test_fresh_fix_and_locate() -> None:
    idx = _index()
    lat, lon = offset(LAT0, LON0, 0, 400)
    cur = CustomerCursor(1000.0, lat, lon, 5.0)
    assert fresh_fix(cur, 1000.0 + 1800, 1800)
    assert fresh_fix(cur, 1000.0 - 1800, 1800)  # a fix just after the event says it too
    assert not fresh_fix(cur, 1000.0 + 1801, 1800)
    assert not fresh_fix(None, 1000.0, 1800)
    assert not fresh_fix(CustomerCursor(float("-inf"), 0.0, 0.0), 1000.0, 1800)
    wide = Needs(True, True, 500.0)
    store, in_store = locate(wide, {}, cur, idx, 1100.0, 1800)
    assert store is not None and store.fence_id == "opera" and not in_store
    assert locate(wide, {}, cur, idx, 5000.0, 1800) == (None, False)  # the fix is stale
    store, in_store = locate(wide, {"louvre": FenceState(1.0, 1.0)}, cur, idx, 1100.0, 1800)
    assert store is not None and store.fence_id == "louvre" and in_store
    assert locate(Needs(False, False, None), {"louvre": FenceState(1, 1)}, cur, idx, 1, 1) == (
        None,
        False,
    )
    assert needs_of([]) == Needs(False, False, None)
    assert needs_of([Trigger("event", "x", near_store_m=9.0), Trigger("event", "x")]).near_m == 9


def test_event_instance_is_the_event_id_else_type_and_millisecond() -> None:
    assert event_instance("search", 12.3456, "e-1") == "ev:e-1"
    assert event_instance("search", 12.3456, None) == "ev:search:12346"


def test_showrooming_offer_decided_with_the_store_context() -> None:
    b = book(campaign_doc("shw", triggers=[SEARCH_IN_STORE]))
    store = store_inside({"opera": FenceState(1.0, 1.0)}, _index())
    ev = event_trigger("alice", "search", TUE_11, "ev:e1", store, in_store=True)
    d = run(b, customer(), ev)
    assert (d.outcome, d.campaign_id, d.trigger.fence_name, d.trigger.store_id) == (
        "send",
        "shw",
        "Opéra",
        "s-opera",
    )


def test_nearest_store_prefilter_agrees_with_measuring_every_store() -> None:
    rng = random.Random(5)
    feats = []
    for i in range(300):
        lat, lon = offset(LAT0, LON0, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
        if i % 2:
            feats.append(square_feature(f"f{i}", lat, lon, rng.uniform(5, 80), store_id=f"s{i}"))
        else:
            feats.append(circle_feature(f"f{i}", lat, lon, rng.uniform(5, 80), store_id=f"s{i}"))
    # stores astride the antimeridian and near a pole
    feats.append(circle_feature("dateline", 0.0, 179.9995, 30, store_id="d"))
    feats.append(circle_feature("north", 89.99, 10.0, 30, store_id="n"))
    idx = FenceIndex.build([fence_from_feature(f) for f in feats])
    every = np.arange(len(idx), dtype=np.int32)
    points = [
        offset(LAT0, LON0, rng.uniform(-3500, 3500), rng.uniform(-3500, 3500)) for _ in range(300)
    ]
    points += [(0.0, -179.9995), (89.99, -170.0)]
    for lat, lon in points:
        for within in (50.0, 300.0, 2000.0):
            depth = idx.depth_m(every, np.full(every.size, lat), np.full(every.size, lon))
            dist = np.maximum(-depth, 0.0)
            got = nearest_store(idx, lat, lon, within)
            if dist.min() > within:
                assert got is None, (lat, lon, within)
            else:
                assert got is not None and got.distance_m == round(float(dist.min())), (lat, lon)
