"""One contract, two implementations: the in-memory ports behave exactly like PostgreSQL's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from adapters.db.fence_repo import PgFenceRepository
from adapters.db.presence_store import PgPresenceStore
from adapters.db.tx import PgTransactions
from adapters.memory.stores import MemoryFenceRepository, MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from geo_engine.models import CustomerCursor, FenceState, PresenceEvent, PresenceEventType
from geo_engine.ports import EventQuery, PresenceCommit, PresenceStore, RawFix, Transactions
from geofences.validation import fence_from_feature
from tests.helpers import LAT0, LON0, circle_feature, square_feature

T = 1_790_000_000.0


class Committing:
    """The store as the unit of work uses it: each batch written in a transaction of its own."""

    def __init__(self, store: PresenceStore, transactions: Transactions) -> None:
        self.store = store
        self.transactions = transactions

    async def commit(self, batch: PresenceCommit) -> list[int]:
        async with self.transactions.transaction() as tx:
            return await self.store.write(tx, batch)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


@pytest.fixture(params=["memory", "postgres"])
async def stores(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[tuple]:  # type: ignore[type-arg]
    if request.param == "memory":
        presence = MemoryPresenceStore()
        fences = MemoryFenceRepository()
        fences.presence = presence
        yield Committing(presence, MemoryTransactions()), fences
    else:
        pg = Committing(PgPresenceStore(clean_pool), PgTransactions(clean_pool))
        yield pg, PgFenceRepository(clean_pool)


async def test_a_write_in_a_failed_transaction_leaves_nothing(stores: tuple) -> None:  # type: ignore[type-arg]
    presence, _ = stores
    await presence.commit(PresenceCommit(states={("c", "f1"): FenceState(T, T)}))

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with presence.transactions.transaction() as tx:
            await presence.store.write(
                tx,
                PresenceCommit(
                    cursors={"c": CustomerCursor(T + 5, LAT0, LON0)},
                    states={("c", "f1"): None, ("c", "f2"): FenceState(T + 5, T + 5)},
                    events=[_ev(PresenceEventType.EXIT, "c", "f1", T + 5)],
                ),
            )
            raise Boom
    cursors, states = await presence.load()
    assert cursors == [] and states == [("c", "f1", FenceState(T, T))]
    assert await presence.events(EventQuery()) == []


def _ev(t: PresenceEventType, cid: str, fid: str, ts: float) -> PresenceEvent:
    return PresenceEvent(type=t, customer_id=cid, geofence_id=fid, ts=ts)


async def test_presence_commit_then_load_round_trips(stores: tuple) -> None:  # type: ignore[type-arg]
    presence, _ = stores
    cur = CustomerCursor(
        last_ts=T + 1.123456789,  # finer than a microsecond: must come back equal
        last_lat=LAT0,
        last_lon=LON0,
        last_accuracy_m=None,
        suspect_ts=T + 0.5,
        suspect_lat=1.0,
        suspect_lon=2.0,
        suspect_count=2,
        suspect_accuracy_m=12.5,
        last_event_ts=T + 0.75,
    )
    st = FenceState(entered_at=T, last_inside_at=T + 1.25, outside_since=None, dwell_fired=True)
    held = FenceState(
        entered_at=T + 2,
        last_inside_at=T + 3.5,
        outside_since=T + 4.25,
        dwell_fired=False,
        source="beacon",
        gps_confirmed=False,
        held_until=T + 93.5,
        held_by="nfc",
    )
    # a customer known from proximity signals only: no fix, so no position (last_ts = -inf)
    signal_only = CustomerCursor(float("-inf"), 0.0, 0.0, last_event_ts=T + 7.123456789)
    ids = await presence.commit(
        PresenceCommit(
            cursors={"c1": cur, "c2": signal_only},
            states={("c1", "f1"): st, ("c1", "f2"): FenceState(T, T), ("c2", "z1"): held},
            events=[
                _ev(PresenceEventType.ENTER, "c1", "f1", T),
                _ev(PresenceEventType.ENTER, "c1", "f2", T),
            ],
            raw_fixes=[RawFix("c1", "d1", T, LAT0, LON0, 5.0, None, None, False, None)],
        )
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    await presence.commit(PresenceCommit(states={("c1", "f2"): None}))
    cursors, states = await presence.load()
    assert sorted(cursors) == [("c1", cur), ("c2", signal_only)]
    assert sorted(states) == [("c1", "f1", st), ("c2", "z1", held)]
    # one customer's, as the unit of work re-reads them after a commit of unknown outcome
    assert await presence.load(["c2", "nobody"]) == ([("c2", signal_only)], [("c2", "z1", held)])
    assert await presence.load([]) == ([], [])
    assert await presence.presence_of("c2") == [("z1", held)]
    assert await presence.presence_of("c1") == [("f1", st)]
    assert await presence.presence_of("nobody") == []


async def test_event_queries_filter_and_page_in_id_order(stores: tuple) -> None:  # type: ignore[type-arg]
    presence, _ = stores
    evs = [
        _ev(PresenceEventType.ENTER, "a", "f1", T),
        _ev(PresenceEventType.ENTER, "b", "f1", T + 1),
        _ev(PresenceEventType.DWELL, "a", "f1", T + 300),
        _ev(PresenceEventType.EXIT, "a", "f1", T + 400),
    ]
    ids = await presence.commit(PresenceCommit(events=evs))
    a = await presence.events(EventQuery(customer_id="a"))
    assert [se.event.type for se in a] == [
        PresenceEventType.ENTER,
        PresenceEventType.DWELL,
        PresenceEventType.EXIT,
    ]
    assert [se.event for se in a] == [evs[0], evs[2], evs[3]]
    page = await presence.events(EventQuery(after_id=ids[1], limit=1))
    assert [se.id for se in page] == [ids[2]]
    late = await presence.events(EventQuery(since=T + 300))
    assert [se.id for se in late] == ids[2:]
    exits = await presence.events(EventQuery(type="exit", geofence_id="f1"))
    assert [se.id for se in exits] == [ids[3]]


async def test_fence_repository_contract(stores: tuple) -> None:  # type: ignore[type-arg]
    presence, fences = stores
    f1 = fence_from_feature(square_feature("f1", store_id="A"), fence_id="f1")
    f2 = fence_from_feature(circle_feature("f2", LAT0, LON0, 40.0, store_id="B"), fence_id="f2")
    assert await fences.upsert(f1) is True
    assert await fences.upsert(f1) is False
    await fences.upsert_many([f2])
    assert [f.id for f in await fences.all()] == ["f1", "f2"]
    assert [f.id for f in await fences.find(store_id="B")] == ["f2"]
    assert [f.id for f in await fences.find(kind="store")] == ["f1", "f2"]
    got = await fences.get("f2")
    assert got is not None and got.radius_m == 40.0 and got.geometry == f2.geometry
    assert await fences.get("nope") is None
    await presence.commit(PresenceCommit(states={("c", "f1"): FenceState(T, T)}))
    assert await fences.delete("f1") is True
    assert await fences.delete("f1") is False
    assert await presence.presence_of("c") == []
