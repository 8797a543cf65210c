"""One contract, two implementations: the profile store (geo_engine/profile/ports.py) in memory
behaves as on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
import pytest

from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from geo_engine.ports import PresenceCommit, PresenceStore, RawFix, Transactions
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus, Sex
from geo_engine.profile.events import CHANNELS
from geo_engine.profile.places import HOME, WORK, CellEvidence
from geo_engine.profile.ports import EventRecord, Loaded, OrderRecord, PlaceFix, ProfileStore
from geo_engine.profile.rfm import RfmFigures

T = 1_790_000_000.0
DAY = 86400.0
HALF_LIFE = 10 * DAY


class Boom(Exception):
    pass


@dataclass
class World:
    store: ProfileStore
    transactions: Transactions
    presence: PresenceStore  # writes the raw fixes home/work inference reads


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    if request.param == "memory":
        presence = MemoryPresenceStore()
        yield World(MemoryProfileStore(presence), MemoryTransactions(), presence)
    else:
        pool = clean_pool
        yield World(PgProfileStore(pool), PgTransactions(pool), PgPresenceStore(pool))


def event(who: str, ts: float, **kw: object) -> EventRecord:
    fields: dict[str, object] = {
        "type": "page_view",
        "channel": "web",
        "properties": "{}",
        "kpis": [],
        "categories": None,
    }
    fields.update(kw)
    return EventRecord(who, ts=ts, **fields)  # type: ignore[arg-type]


def order(who: str, oid: str, ts: float, base: float | None = 10.0) -> OrderRecord:
    return OrderRecord(who, oid, ts, 12.0, "EUR", base)


async def load(store: ProfileStore) -> Loaded:
    return await store.load(
        counts_since=T - 30 * DAY,
        affinity_since=T - 30 * DAY,
        ref=T,
        channel_half_life_s=HALF_LIFE,
        category_half_life_s=HALF_LIFE / 2,
    )


def _empty(data: Loaded) -> bool:
    parts = (data.counts, data.trends, data.channels, data.categories, data.rfm)
    rest = (data.attributes, data.consents, data.place_cells)
    return not any(parts) and not any(rest)


# --- behavioural events and orders ------------------------------------------------------------
async def test_an_event_id_or_a_visit_is_stored_once(world: World) -> None:
    s = world.store
    async with world.transactions.transaction() as tx:
        got = await s.insert_events(
            tx,
            [
                event("alice", T, event_id="e1"),
                event("alice", T + 1, event_id="e1"),  # repeated in the batch
                event("alice", T + 2, type="store_visit", channel="store", presence_event_id=7),
                event("bob", T + 3),  # no id: nothing to repeat
            ],
        )
        assert [(eid, pid) for _, eid, pid in got] == [("e1", None), (None, 7), (None, None)]
        ids = [i for i, _, _ in got]
        assert ids == sorted(ids) and len(set(ids)) == 3
    async with world.transactions.transaction() as tx:
        again = await s.insert_events(
            tx,
            [
                event("alice", T, event_id="e1"),
                event("carol", T + 5, type="store_visit", channel="store", presence_event_id=7),
                event("bob", T + 3),
            ],
        )
        assert [(eid, pid) for _, eid, pid in again] == [(None, None)]
        assert again[0][0] > max(ids)


async def test_orders_cancel_once_and_rfm_counts_those_left(world: World) -> None:
    s = world.store
    async with world.transactions.transaction() as tx:
        rows = [order("alice", "o1", T - DAY), order("alice", "o2", T, None)]
        assert await s.insert_orders(tx, rows) == {("alice", "o1"), ("alice", "o2")}
        rows = [order("alice", "o1", T), order("bob", "o1", T)]
        assert await s.insert_orders(tx, rows) == {("bob", "o1")}
        cancels = [("alice", "o1", T + 1), ("alice", "nope", T + 1)]
        assert await s.cancel_orders(tx, cancels) == ({("alice", "o1")}, set())
        assert await s.cancel_orders(tx, [("alice", "o1", T + 2)]) == (set(), {("alice", "o1")})
        rfm = await s.rfm_of(tx, ["alice", "bob", "carol"])
        # o2 has no base amount: an order, not a converted one
        assert rfm == {
            "alice": RfmFigures(1, 0, 0.0, T, T),
            "bob": RfmFigures(1, 1, 10.0, T, T),
            "carol": None,
        }
        await s.uncancel_orders(tx, [("alice", "o1")])
        assert (await s.rfm_of(tx, ["alice"]))["alice"] == RfmFigures(2, 1, 10.0, T - DAY, T)
        await s.delete_orders(tx, [("alice", "o1"), ("alice", "o2")])
        assert await s.rfm_of(tx, ["alice"]) == {"alice": None}
        assert await s.insert_orders(tx, [order("alice", "o1", T)]) == {("alice", "o1")}


# --- loading the state -------------------------------------------------------------------------
async def test_load_rebuilds_what_was_written(world: World) -> None:
    s = world.store
    consent = Consent(ConsentStatus.GRANTED, T - DAY, "app")
    attrs = Attributes(first_name="Alice", age_band="25-34", sex=Sex.FEMALE, home_postcode="75011")
    cell = CellEvidence(3.5, 4, 2, 480_000, 20_000)
    async with world.transactions.transaction() as tx:
        await s.insert_events(
            tx,
            [
                event("alice", T - DAY, kpis=[1, 2], categories={"shoes": 2.0}),
                event("alice", T - DAY + 60, kpis=[1]),
                event("alice", T, type="purchase", channel="app", kpis=[1]),
                event("bob", T - 40 * DAY, kpis=[1], categories={"bags": 1.0}),  # too old
            ],
        )
        await s.insert_orders(tx, [order("alice", "o1", T)])
        await s.upsert_trends(tx, [("alice", [0, 1, -1]), ("bob", [1])])
        await s.upsert_trends(tx, [("bob", [-1, 0])])  # replaced whole
        at = await s.put_attributes(tx, "alice", attrs)
        await s.put_consents(tx, "alice", {ConsentPurpose.SMS: consent})
        await s.upsert_place_cells(tx, {("alice", HOME, 42): cell})
    data = await load(s)
    day = int((T - DAY) // DAY)
    assert sorted(data.counts) == [
        ("alice", 1, day, 2),
        ("alice", 1, day + 1, 1),
        ("alice", 2, day, 1),
    ]
    assert sorted(data.trends) == [("alice", [0, 1, -1]), ("bob", [-1, 0])]
    web, app = CHANNELS.index("web"), CHANNELS.index("app")
    channels = {(c, i): v for c, i, v in data.channels}
    assert channels.keys() == {("alice", web), ("alice", app)}
    assert channels[("alice", web)] == pytest.approx(2 ** (-1 / 10) + 2 ** ((60 - DAY) / HALF_LIFE))
    assert channels[("alice", app)] > 1.0  # a purchase weighs more than a page view
    assert data.categories == [("alice", "shoes", pytest.approx(2.0 * 2 ** (-1 / 5)))]
    assert data.rfm == {"alice": RfmFigures(1, 1, 10.0, T, T)}
    assert data.attributes == {"alice": replace(attrs, updated_at=at)}
    assert abs(at - datetime.now(UTC).timestamp()) < 60
    assert data.consents == {"alice": {ConsentPurpose.SMS: consent}}
    assert data.place_cells == {("alice", HOME, 42): cell}


async def test_the_latest_consent_statement_wins(world: World) -> None:
    s = world.store
    granted = Consent(ConsentStatus.GRANTED, T, "app")
    async with world.transactions.transaction() as tx:
        await s.put_consents(tx, "alice", {ConsentPurpose.SMS: granted})
        older = Consent(ConsentStatus.DENIED, T - 10, "store")  # arrives late: logged only
        await s.put_consents(tx, "alice", {ConsentPurpose.SMS: older})
    assert (await load(s)).consents == {"alice": {ConsentPurpose.SMS: granted}}
    revoked = Consent(ConsentStatus.REVOKED, T + 10, "sms")
    location = Consent(ConsentStatus.GRANTED, T, "app")
    async with world.transactions.transaction() as tx:
        await s.put_consents(tx, "alice", {ConsentPurpose.SMS: revoked})
        await s.put_consents(tx, "alice", {ConsentPurpose.LOCATION: location})
    assert (await load(s)).consents == {
        "alice": {ConsentPurpose.SMS: revoked, ConsentPurpose.LOCATION: location}
    }


# --- home and work -----------------------------------------------------------------------------
HERE = (48.86, 2.36, 12.0)  # lat, lon, accuracy


def fix(who: str, ts: float, flag: str | None = None) -> RawFix:
    return RawFix(who, "d1", ts, *HERE, None, None, False, flag)


async def _receive(w: World, *fixes: RawFix) -> None:
    async with w.transactions.transaction() as tx:
        await w.presence.write(tx, PresenceCommit(raw_fixes=fixes))


async def _fixes_since(w: World, *, fail: bool = False) -> list[PlaceFix]:
    async with w.transactions.transaction() as tx:
        got = await w.store.fixes_since(tx, "places", datetime.now(UTC))
        if fail:
            raise Boom
    return got


async def test_fixes_are_read_once_and_the_mark_moves_with_the_transaction(world: World) -> None:
    await _receive(world, fix("alice", T + 5), fix("bob", T), fix("alice", T + 9, "mock"))
    with pytest.raises(Boom):
        await _fixes_since(world, fail=True)
    first = await _fixes_since(world)  # the failed read moved nothing
    assert first == [PlaceFix("bob", T, *HERE), PlaceFix("alice", T + 5, *HERE)]
    assert await _fixes_since(world) == []
    await _receive(world, fix("carol", T + 1))
    assert [f.customer_id for f in await _fixes_since(world)] == ["carol"]


async def test_place_cells_are_read_per_customer_and_replaced(world: World) -> None:
    s = world.store
    a, b = CellEvidence(1.0, 1, 1, 10, 1), CellEvidence(2.0, 3, 2, 12, 2)
    async with world.transactions.transaction() as tx:
        await s.upsert_place_cells(tx, {("alice", HOME, 1): a, ("alice", WORK, 2): a})
        await s.upsert_place_cells(tx, {("alice", HOME, 1): b, ("bob", HOME, 1): a})
        assert await s.place_cells(tx, ["alice", "nobody"]) == {
            ("alice", HOME, 1): b,
            ("alice", WORK, 2): a,
        }


# --- transactions ------------------------------------------------------------------------------
async def test_a_transaction_that_raises_leaves_nothing(world: World) -> None:
    s = world.store
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            await s.insert_events(tx, [event("alice", T, event_id="e1", kpis=[1])])
            await s.insert_orders(tx, [order("alice", "o1", T)])
            await s.upsert_trends(tx, [("alice", [1])])
            await s.put_attributes(tx, "alice", Attributes(first_name="A"))
            sms = Consent(ConsentStatus.GRANTED, T, "app")
            await s.put_consents(tx, "alice", {ConsentPurpose.SMS: sms})
            await s.upsert_place_cells(tx, {("alice", HOME, 1): CellEvidence(1, 1, 1, 1, 1)})
            raise Boom
    assert _empty(await load(s))
    async with world.transactions.transaction() as tx:  # the ids are free again
        assert len(await s.insert_events(tx, [event("alice", T, event_id="e1")])) == 1
        assert await s.insert_orders(tx, [order("alice", "o1", T)]) == {("alice", "o1")}


async def test_a_savepoint_rolled_back_undoes_only_its_part(world: World) -> None:
    s = world.store
    async with world.transactions.transaction() as tx:
        await s.insert_events(tx, [event("alice", T, event_id="kept", kpis=[1])])
        await s.insert_orders(tx, [order("alice", "o1", T)])
        with pytest.raises(Boom):
            async with tx.savepoint():
                await s.insert_events(tx, [event("alice", T, event_id="gone", kpis=[1])])
                await s.cancel_orders(tx, [("alice", "o1", T + 1)])
                await s.upsert_trends(tx, [("alice", [1])])
                raise Boom
        assert (await s.rfm_of(tx, ["alice"]))["alice"] == RfmFigures(1, 1, 10.0, T, T)
        again = await s.insert_events(tx, [event("alice", T, event_id="gone")])
        assert [eid for _, eid, _ in again] == ["gone"]
    data = await load(s)
    assert data.counts == [("alice", 1, int(T // DAY), 1)] and data.trends == []
