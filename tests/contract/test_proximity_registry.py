"""One contract, two implementations: the beacon and NFC tag registries
(geo_engine/proximity_ports.py) in memory behave as on PostgreSQL: the registry, its conflicts,
identity lookups, the SUN counter guard, taps, and what a failed transaction leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import asyncpg
import pytest

from adapters.db.beacons import PgBeaconRepository, PgNfcTagRepository
from adapters.db.fence_repo import PgFenceRepository
from adapters.db.tx import PgTransactions
from adapters.memory.beacons import MemoryBeaconRegistry, MemoryNfcTagRegistry
from adapters.memory.stores import MemoryFenceRepository
from adapters.memory.tx import MemoryTransactions
from geo_engine.ports import FenceRepository, Transactions, Tx
from geo_engine.proximity_ports import (
    EDDYSTONE_UID,
    IBEACON,
    Beacon,
    BeaconRegistry,
    Conflict,
    NfcTag,
    NfcTagRegistry,
    NfcTap,
    UnknownTag,
    canonical_hex,
    canonical_uuid,
    eddystone_identity,
    ibeacon_identity,
)
from geofences.validation import fence_from_feature
from tests.helpers import LAT0, LON0, offset, square_feature

T = 1_790_000_000.0
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
KEY = bytes(range(16))


class Boom(Exception):
    pass


@dataclass
class World:
    beacons: BeaconRegistry
    tags: NfcTagRegistry
    fences: FenceRepository
    transactions: Transactions


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    if request.param == "memory":
        fences = MemoryFenceRepository()
        w = World(
            MemoryBeaconRegistry(fences),
            MemoryNfcTagRegistry(fences),
            fences,
            MemoryTransactions(),
        )
    else:
        w = World(
            PgBeaconRepository(clean_pool),
            PgNfcTagRepository(clean_pool),
            PgFenceRepository(clean_pool),
            PgTransactions(clean_pool),
        )
    for store in ("s1", "s2"):
        lat, lon = offset(LAT0, LON0, 0, 500 if store == "s2" else 0)
        await w.fences.upsert(fence_from_feature(square_feature(store, lat, lon, store_id=store)))
        zone = square_feature(f"{store}-dept", lat, lon, 8.0, kind="zone", store_id=store)
        await w.fences.upsert(fence_from_feature(zone))
    yield w


def ibeacon(id: str, minor: int = 7, fence: str = "s1-dept", **kw: object) -> Beacon:
    fields: dict[str, object] = {"uuid": UUID, "major": 1, "minor": minor, **kw}
    return Beacon(id, IBEACON, fence, **fields)  # type: ignore[arg-type]


EDDY = Beacon(
    "e1",
    EDDYSTONE_UID,
    "s2-dept",
    namespace=canonical_hex("0xEDD1EBEAC04E5DEFA017", 10),
    instance=canonical_hex("0BDB87539B67", 6),
    measured_power=-62,
)


async def test_beacons_round_trip_with_their_fences_store(world: World) -> None:
    b = ibeacon("b1", measured_power=-59, placement="shoes", metadata={"floor": 2})
    await world.beacons.create(b)
    await world.beacons.create(EDDY)
    got = await world.beacons.get("b1")
    assert got is not None and got.created_at is not None and got.updated_at is not None
    assert got.store_id == "s1" and got.identity == ibeacon_identity(UUID, 1, 7)
    assert replace(got, store_id=None, created_at=None, updated_at=None) == b
    e = await world.beacons.get("e1")
    assert e is not None and (e.store_id, e.namespace, e.instance) == (
        "s2",
        "edd1ebeac04e5defa017",
        "0bdb87539b67",
    )
    assert await world.beacons.get("nope") is None
    assert [x.id for x in await world.beacons.find()] == ["b1", "e1"]
    assert [x.id for x in await world.beacons.find(store_id="s2")] == ["e1"]
    assert [x.id for x in await world.beacons.find(geofence_id="s1-dept")] == ["b1"]
    assert await world.beacons.find(store_id="s1", geofence_id="s2-dept") == []


async def test_identities_are_matched_in_their_canonical_form(world: World) -> None:
    await world.beacons.create(ibeacon("b1", uuid=canonical_uuid(UUID.upper().replace("-", ""))))
    await world.beacons.create(EDDY)
    for spelled in (UUID, UUID.upper(), UUID.replace("-", ""), f" {UUID} "):
        key = ibeacon_identity(canonical_uuid(spelled), 1, 7)
        assert [b.id for b in (await world.beacons.by_identity([key])).values()] == ["b1"]
    eddy = eddystone_identity(
        canonical_hex("EDD1EBEAC04E5DEFA017", 10), canonical_hex("0x0bdb87539b67", 6)
    )
    i1 = ibeacon_identity(UUID, 1, 7)
    found = await world.beacons.by_identity([i1, eddy, i1, ibeacon_identity(UUID, 1, 8)])
    assert {k: (v.id, v.store_id) for k, v in found.items()} == {
        i1: ("b1", "s1"),
        eddy: ("e1", "s2"),
    }
    assert await world.beacons.by_identity([]) == {}


async def test_beacon_conflicts_name_the_field(world: World) -> None:
    await world.beacons.create(ibeacon("b1"))
    cases = [
        (ibeacon("b1", minor=8), "id"),
        (ibeacon("b2"), "identity"),
        (ibeacon("b1"), "id"),  # both taken: the id is reported
        (ibeacon("b3", minor=9, fence="nowhere"), "geofence_id"),
    ]
    for beacon, field in cases:
        with pytest.raises(Conflict) as caught:
            await world.beacons.create(beacon)
        assert caught.value.field == field, beacon
    for beacon, field in [(ibeacon("b2"), "identity"), (ibeacon("b1", fence="x"), "geofence_id")]:
        with pytest.raises(Conflict) as caught:
            await world.beacons.put(beacon)
        assert caught.value.field == field
    assert [b.id for b in await world.beacons.find()] == ["b1"]
    assert (await world.beacons.get("b1")) is not None


async def test_put_creates_or_replaces_and_frees_the_old_identity(world: World) -> None:
    assert await world.beacons.put(ibeacon("b1")) is True
    before = await world.beacons.get("b1")
    assert await world.beacons.put(ibeacon("b1", minor=9, fence="s2-dept")) is False
    after = await world.beacons.get("b1")
    assert before is not None and after is not None
    assert (after.minor, after.store_id, after.created_at) == (9, "s2", before.created_at)
    assert after.updated_at is not None and after.created_at is not None
    assert after.updated_at >= after.created_at
    assert await world.beacons.by_identity([ibeacon_identity(UUID, 1, 7)]) == {}
    await world.beacons.create(ibeacon("b2"))  # the old identity is free again
    assert await world.beacons.delete("b2") is True
    assert await world.beacons.delete("b2") is False
    assert await world.beacons.get("b2") is None


def tag(id: str, fence: str = "s1", **kw: object) -> NfcTag:
    return NfcTag(id, fence, **kw)  # type: ignore[arg-type]


async def test_tags_round_trip_and_conflict(world: World) -> None:
    sun = tag("t1", "s1-dept", uid="04a1b2c3d4e5f6", sun_file_key=KEY, sun_meta_key=KEY[::-1])
    await world.tags.create(sun)
    await world.tags.create(tag("t2", metadata={"till": 3}, last_counter=99, placement="till"))
    await world.tags.create(tag("t3", "s2"))
    t1, t2 = await world.tags.get("t1"), await world.tags.get("t2")
    assert t1 is not None and t2 is not None
    assert (t1.uid, t1.sun_file_key, t1.sun_meta_key, t1.store_id) == (
        "04a1b2c3d4e5f6",
        KEY,
        KEY[::-1],
        "s1",  # a zone's tag is its store's
    )
    assert t1.created_at is not None and t1.last_counter is None
    assert (t2.metadata, t2.placement, t2.last_counter) == ({"till": 3}, "till", None)
    assert [t.id for t in await world.tags.find()] == ["t1", "t2", "t3"]
    assert [t.id for t in await world.tags.find("s1")] == ["t1", "t2"]
    assert await world.tags.get("nope") is None
    for t, field in [(tag("t1", "s2"), "id"), (tag("t4", "nowhere"), "geofence_id")]:
        with pytest.raises(Conflict) as caught:
            await world.tags.create(t)
        assert caught.value.field == field
    assert [t.id for t in await world.tags.find("s2")] == ["t3"]


async def _advance(world: World, tag_id: str, counter: int) -> bool:
    async with world.transactions.transaction() as tx:
        return await world.tags.advance_counter(tx, tag_id, counter)


async def _counter(world: World, tag_id: str) -> int | None:
    t = await world.tags.get(tag_id)
    assert t is not None
    return t.last_counter


async def test_the_counter_only_moves_forward(world: World) -> None:
    await world.tags.create(tag("t1", sun_file_key=KEY))
    await world.tags.create(tag("t2", sun_file_key=KEY))
    assert await _advance(world, "t1", 5) is True
    assert await _advance(world, "t1", 5) is False  # a replay
    assert await _advance(world, "t1", 4) is False
    assert await _counter(world, "t1") == 5
    assert await _advance(world, "t1", 6) is True
    assert await _counter(world, "t1") == 6
    assert await _advance(world, "t2", 0) is True  # a first counter of 0 is a counter
    assert await _advance(world, "t2", 0) is False
    assert await _advance(world, "nope", 1) is False


async def test_a_concurrent_tap_with_the_same_counter_loses(world: World) -> None:
    await world.tags.create(tag("t1", sun_file_key=KEY))
    async with world.transactions.transaction() as tx:
        assert await world.tags.advance_counter(tx, "t1", 3) is True
        other = asyncio.create_task(_advance(world, "t1", 3))
        await asyncio.sleep(0.1)  # PostgreSQL: it waits on the row this transaction holds
    assert await asyncio.wait_for(other, 10) is False
    assert await _counter(world, "t1") == 3


async def _record(world: World, tx: Tx, tag_id: str, who: str, ts: float, ctr: int | None) -> int:
    """A tap as the service records it: verified with a counter, else flagged late."""
    return await world.tags.record_tap(
        tx,
        tag_id=tag_id,
        customer_id=who,
        device_id=None if ctr is None else f"d-{who}",
        ts=ts,
        counter=ctr,
        verified=ctr is not None,
        flag="late" if ctr is None else None,
    )


async def _tap(world: World, tag_id: str, who: str, ts: float, counter: int | None) -> int:
    async with world.transactions.transaction() as tx:
        return await _record(world, tx, tag_id, who, ts, counter)


async def test_taps_are_recorded_per_tag_in_order(world: World) -> None:
    await world.tags.create(tag("t1"))
    await world.tags.create(tag("t2"))
    a = await _tap(world, "t1", "alice", T + 1.5, 7)
    b = await _tap(world, "t2", "bob", T + 2, None)
    c = await _tap(world, "t1", "carol", T + 3, None)
    assert 0 < a < b < c
    assert await world.tags.taps("t1") == [
        NfcTap(a, "t1", "alice", "d-alice", T + 1.5, 7, True, None),
        NfcTap(c, "t1", "carol", None, T + 3, None, False, "late"),
    ]
    assert [t.id for t in await world.tags.taps("t2")] == [b]
    assert await world.tags.taps("nope") == []
    with pytest.raises(UnknownTag):
        await _tap(world, "nope", "alice", T, None)
    assert await world.tags.delete("t1") is True  # its taps go with it
    assert await world.tags.delete("t1") is False
    assert await world.tags.taps("t1") == []
    await world.tags.create(tag("t1"))
    assert await world.tags.taps("t1") == []


async def test_a_failed_transaction_or_savepoint_leaves_no_counter_and_no_tap(
    world: World,
) -> None:
    await world.tags.create(tag("t1", sun_file_key=KEY))
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            assert await world.tags.advance_counter(tx, "t1", 5) is True
            await _record(world, tx, "t1", "a", T, 5)
            raise Boom
    assert await _counter(world, "t1") is None and await world.tags.taps("t1") == []
    async with world.transactions.transaction() as tx:
        assert await world.tags.advance_counter(tx, "t1", 5) is True
        kept = await _record(world, tx, "t1", "a", T, 5)
        with pytest.raises(Boom):
            async with tx.savepoint():
                assert await world.tags.advance_counter(tx, "t1", 9) is True
                await _record(world, tx, "t1", "b", T + 1, 9)
                raise Boom
        assert await world.tags.advance_counter(tx, "t1", 6) is True  # 9 was undone
    assert await _counter(world, "t1") == 6
    assert [(t.id, t.customer_id) for t in await world.tags.taps("t1")] == [(kept, "a")]


async def test_deleting_a_fence_removes_what_is_placed_in_it(world: World) -> None:
    await world.beacons.create(ibeacon("b1"))
    await world.beacons.create(EDDY)
    await world.tags.create(tag("t1", "s1-dept"))
    await world.tags.create(tag("t2", "s1"))
    await _tap(world, "t1", "alice", T, None)
    assert await world.fences.delete("s1-dept") is True
    assert await world.beacons.get("b1") is None
    assert [b.id for b in await world.beacons.find()] == ["e1"]
    assert await world.beacons.by_identity([ibeacon_identity(UUID, 1, 7)]) == {}
    assert [t.id for t in await world.tags.find()] == ["t2"]
    assert await world.tags.taps("t1") == []
    await world.beacons.create(ibeacon("b1", fence="s2-dept"))  # id and identity are free
    await world.tags.create(tag("t1", "s2"))
    assert await world.tags.taps("t1") == []
