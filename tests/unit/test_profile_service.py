"""ProfileService on the memory ports: behavioural events (duplicates, objections, the reaction
in the same transaction, a failing reaction undoing everything), store and competitor visits
from presence, consents merged latest-wins."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adapters.services.profiles import PostedEvents
from geo_engine.ports import Tx
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus
from geo_engine.profile.events import EventType
from geo_engine.profile.profile import CustomerProfile
from geo_engine.profile.velocity import Crossing
from tests.memory_engine import (
    FAR,
    RIVAL,
    STORE,
    MemoryServices,
    T,
    at,
    build_memory_services,
    competitor_feature,
    store_feature,
)

LOCATION, PUSH, PROFILING = ConsentPurpose.LOCATION, ConsentPurpose.PUSH, ConsentPurpose.PROFILING
GRANTED, DENIED = ConsentStatus.GRANTED, ConsentStatus.DENIED


class Boom(Exception):
    pass


class Reacted:
    """The reaction step handed to `ingest`: what it was given, and whether it saw the events
    already written in the transaction it was given."""

    def __init__(self, svc: MemoryServices, *, fail: bool = False) -> None:
        self.svc = svc
        self.fail = fail
        self.calls: list[tuple[PostedEvents, list[Crossing]]] = []
        self.stored_then: list[str | None] = []

    async def __call__(self, tx: Tx, posted: PostedEvents, crossings: list[Crossing]) -> None:
        self.calls.append((list(posted), list(crossings)))
        self.stored_then = [e.record.event_id for e in self.svc.profile_store.events]
        # a write of the reaction's own, in the same transaction (as a decision's would be)
        await self.svc.profile_store.put_consents(
            tx, "alice", {PUSH: Consent(GRANTED, T, "reaction")}
        )
        if self.fail:
            raise Boom("the decision step failed")


def page_view(who: str, event_id: str | None, ts: float = T, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "type": "page_view",
        "ts": ts,
        "channel": "web",
        "customer_id": who,
        "properties": {"url": "https://shop.example/shoes", "category": "shoes"},
    }
    if event_id is not None:
        row["event_id"] = event_id
    row.update(kw)
    return row


def count(p: CustomerProfile | None, figure: str) -> float:
    """The customer's events of `figure` in the memory profile's day counts."""
    assert p is not None
    return sum(p.velocity.daily_of(figure, ()))


def memory_of(p: CustomerProfile | None) -> tuple[object, ...]:
    """What the memory profile says, comparable (the day counts are a numpy array)."""
    assert p is not None
    v = p.velocity
    return (
        p.consents,
        p.rfm,
        p.rfm_scores,
        p.segment,
        p.categories,
        p.channels,
        v.figures,
        v.daily.tolist(),
    )


async def _world() -> MemoryServices:
    return await build_memory_services(features=[store_feature(), competitor_feature()])


async def test_events_are_stored_once_per_event_id() -> None:
    svc = await _world()
    react = Reacted(svc)
    rows = [page_view("alice", "e1"), page_view("alice", "e1"), page_view("alice", None)]
    out = await svc.profiles.ingest(svc.events(rows), react)
    assert out.accepted == 2
    assert out.duplicates == [(1, "event_id repeated in this batch")]
    assert count(svc.profiles.profile("alice"), "page_view") == 2
    # the same event sent again later: a duplicate, not counted, not reacted to
    again = await svc.profiles.ingest(svc.events([page_view("alice", "e1")]), react)
    assert (again.accepted, again.duplicates) == (0, [(0, "event_id already recorded")])
    assert [e.record.event_id for e in svc.profile_store.events] == ["e1", None]
    assert count(svc.profiles.profile("alice"), "page_view") == 2
    assert len(react.calls) == 1


async def test_an_objecting_customer_s_events_are_dropped() -> None:
    svc = await _world()
    await svc.profiles.put_consents("bob", {PROFILING: Consent(DENIED, T - 60, "web")})
    react = Reacted(svc)
    out = await svc.profiles.ingest(
        svc.events([page_view("bob", "b1"), page_view("alice", "a1")]), react
    )
    assert out.accepted == 1
    assert out.dropped == [(0, "objection: the customer objected to profiling")]
    assert [e.record.customer_id for e in svc.profile_store.events] == ["alice"]
    assert count(svc.profiles.profile("bob"), "page_view") == 0
    ((posted, _),) = react.calls
    assert [(eid, e.customer_id) for eid, e in posted] == [("a1", "alice")]
    # a batch of objectors only: nothing stored, no transaction, no reaction
    out = await svc.profiles.ingest(svc.events([page_view("bob", "b2")]), react)
    assert (out.accepted, len(out.dropped), len(react.calls)) == (0, 1, 1)


async def test_the_reaction_gets_the_events_and_crossings_in_their_transaction() -> None:
    svc = await _world()
    react = Reacted(svc)
    rows = [page_view("alice", f"e{i}", T - 60 * i) for i in range(3)]  # min_events is 3
    out = await svc.profiles.ingest(svc.events(rows), react)
    ((posted, crossings),) = react.calls
    assert [(eid, e.type, e.customer_id, e.ts) for eid, e in posted] == [
        (f"e{i}", EventType.PAGE_VIEW, "alice", T - 60 * i) for i in range(3)
    ]
    # three page views from nothing: page_view and interest cross into rising
    assert sorted((c.customer_id, c.figure, c.trend) for c in crossings) == [
        ("alice", "interest", "rising"),
        ("alice", "page_view", "rising"),
    ]
    assert out.signals == crossings
    assert [c for _, c in svc.profile_store.signals] == crossings
    # the events were already written in the transaction the reaction was handed, and the
    # reaction's own write committed with them
    assert react.stored_then == ["e0", "e1", "e2"]
    assert svc.profile_store.consents["alice"][PUSH].source == "reaction"
    trends = {f.name: f.trend for f in svc.profiles.profile("alice").velocity.figures}  # type: ignore[union-attr]
    assert trends["page_view"] == "rising"


async def test_a_failing_reaction_rolls_the_events_back() -> None:
    svc = await _world()
    await svc.grant("alice", LOCATION)
    await svc.profiles.ingest(svc.events([page_view("alice", "old")]), Reacted(svc))
    store = svc.profile_store
    stored_before = list(store.events)
    trends_before, signals_before = copy.deepcopy(store.trends), list(store.signals)
    consents_before = copy.deepcopy(store.consents)
    profile_before = memory_of(svc.profiles.profile("alice"))
    purchase = {
        "type": "purchase",
        "ts": T,
        "channel": "web",
        "customer_id": "alice",
        "event_id": "p1",
        "properties": {
            "order_id": "o-1",
            "amount": 80.0,
            "currency": "EUR",
            "items": [{"category": "shoes"}],
        },
    }
    rows = [page_view("alice", f"e{i}", T - 60 * i) for i in range(3)] + [purchase]
    failing = Reacted(svc, fail=True)
    with pytest.raises(Boom):
        await svc.profiles.ingest(svc.events(rows), failing)
    assert len(failing.calls) == 1 and failing.calls[0][1]  # it had crossings to react to
    # nothing stored: events, the order, trends, signals, the reaction's own write
    assert store.events == stored_before
    assert store.orders == {} and store.trends == trends_before
    assert store.signals == signals_before and store.consents == consents_before
    # the memory profile unchanged: counts, trends, RFM
    assert memory_of(svc.profiles.profile("alice")) == profile_before
    # and the same events later go through as new (their ids were not kept)
    out = await svc.profiles.ingest(svc.events(rows), Reacted(svc))
    assert (out.accepted, out.duplicates) == (4, [])
    assert svc.profiles.profile("alice").rfm is not None  # type: ignore[union-attr]


async def test_a_dwell_in_a_store_counts_one_store_visit_an_enter_none() -> None:
    svc = await _world()
    await svc.grant("alice", LOCATION)
    svc.clock.now = T + 400
    enter = await svc.runtime.ingest(svc.pings([at(FAR, "alice", T - 120), at(STORE, "alice", T)]))
    assert [str(e.type) for _, e in enter.events] == ["enter"]
    assert svc.profile_store.events == []
    assert count(svc.profiles.profile("alice"), "store_visit") == 0
    dwell = await svc.runtime.ingest(svc.pings([at(STORE, "alice", T + 310)]))
    ((dwell_id, ev),) = dwell.events
    assert str(ev.type) == "dwell"
    (visit,) = [e.record for e in svc.profile_store.events]
    assert (visit.type, visit.channel, visit.ts) == ("store_visit", "store", T + 300)
    assert visit.presence_event_id == dwell_id
    assert count(svc.profiles.profile("alice"), "store_visit") == 1
    # the same stored dwell reacted to again (a retried reaction): still one visit
    async with svc.transactions.transaction() as tx:
        assert await svc.profiles.record_visits(tx, dwell.events) == []
    assert len(svc.profile_store.events) == 1
    assert count(svc.profiles.profile("alice"), "store_visit") == 1


async def test_a_dwell_at_a_competitor_counts_a_competitor_visit() -> None:
    svc = await _world()
    await svc.grant("alice", LOCATION)
    svc.clock.now = T + 400
    res = await svc.runtime.ingest(
        svc.pings([at(FAR, "alice", T - 120), at(RIVAL, "alice", T), at(RIVAL, "alice", T + 310)])
    )
    assert [(str(e.type), e.geofence_id) for _, e in res.events] == [
        ("enter", "rival"),
        ("dwell", "rival"),
    ]
    (visit,) = [e.record for e in svc.profile_store.events]
    assert (visit.type, visit.presence_event_id) == ("competitor_visit", res.events[1][0])
    p = svc.profiles.profile("alice")
    assert count(p, "competitor_visit") == 1 and count(p, "store_visit") == 0


async def test_an_objecting_customer_s_visits_are_not_counted() -> None:
    svc = await _world()
    await svc.grant("dan", LOCATION)
    await svc.profiles.put_consents("dan", {PROFILING: Consent(DENIED, T - 60, "app")})
    svc.clock.now = T + 400
    res = await svc.runtime.ingest(svc.pings([at(STORE, "dan", T), at(STORE, "dan", T + 310)]))
    assert [str(e.type) for _, e in res.events] == ["enter", "dwell"]  # presence still tracked
    assert svc.profile_store.events == []
    assert count(svc.profiles.profile("dan"), "store_visit") == 0


async def test_put_consents_merges_latest_wins() -> None:
    svc = await _world()
    push_on = Consent(GRANTED, T - 100, "app")
    loc_on = Consent(GRANTED, T - 100, "app")
    merged = await svc.profiles.put_consents("erin", {PUSH: push_on, LOCATION: loc_on})
    assert merged == {PUSH: push_on, LOCATION: loc_on}
    # an older statement changes nothing; a newer one replaces only its purpose
    stale_off = Consent(DENIED, T - 200, "store")
    loc_off = Consent(ConsentStatus.REVOKED, T - 10, "web")
    merged = await svc.profiles.put_consents("erin", {PUSH: stale_off, LOCATION: loc_off})
    assert merged == {PUSH: push_on, LOCATION: loc_off}
    # the state, the profile and the store agree; every statement is logged
    assert svc.profiles.state.consents["erin"] == merged
    profile = svc.profiles.profile("erin")
    assert profile is not None and profile.consents == merged
    assert svc.profile_store.consents["erin"] == merged
    assert [c for cid, _, c in svc.profile_store.consent_log if cid == "erin"] == [
        push_on,
        loc_on,
        stale_off,
        loc_off,
    ]
    # and the location gate reads it at once: erin's pings are now dropped
    res = await svc.runtime.ingest(svc.pings([at(STORE, "erin", T)]))
    assert (res.accepted, res.dropped) == (0, [(0, "location_consent_refused")])
    # a profiling objection through put_consents: the customer now objects
    await svc.profiles.put_consents("erin", {PROFILING: Consent(DENIED, T, "web")})
    assert "erin" in svc.profiles.state.objecting
    await svc.profiles.put_consents("erin", {PROFILING: Consent(GRANTED, T + 1, "web")})
    assert "erin" not in svc.profiles.state.objecting


async def test_a_failing_reaction_leaves_no_profile_for_a_new_customer() -> None:
    svc = await _world()
    assert svc.profiles.profile("zed") is None
    with pytest.raises(Boom):
        await svc.profiles.ingest(svc.events([page_view("zed", "z1")]), Reacted(svc, fail=True))
    assert svc.profile_store.events == []
    assert svc.profiles.profile("zed") is None  # GET /v1/customers/zed/profile: still 404
