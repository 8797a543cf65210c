"""One contract, two implementations: the identity directory (geo_engine/ports.py) in memory
behaves as on PostgreSQL, the history a device link moves included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from adapters.db.identities import PgIdentityDirectory
from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.memory.identities import MemoryIdentityDirectory
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from geo_engine.models import CustomerCursor, FenceState, PresenceEvent, PresenceEventType
from geo_engine.ports import (
    EventQuery,
    IdentityDirectory,
    PresenceCommit,
    PresenceStore,
    RawFix,
    Transactions,
)
from geo_engine.profile.ports import ProfileStore

T = 1_790_000_000.0
DEVICE = "device:d1"  # the device's own customer id, before it is linked


class Boom(Exception):
    pass


@dataclass
class World:
    directory: IdentityDirectory
    transactions: Transactions
    presence: PresenceStore
    profiles: ProfileStore  # reads the raw fixes back


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    if request.param == "memory":
        presence = MemoryPresenceStore()
        yield World(
            MemoryIdentityDirectory(presence),
            MemoryTransactions(),
            presence,
            MemoryProfileStore(presence),
        )
    else:
        pool = clean_pool
        yield World(
            PgIdentityDirectory(pool),
            PgTransactions(pool),
            PgPresenceStore(pool),
            PgProfileStore(pool),
        )


async def link(w: World, customer_id: str, *pairs: tuple[str, str]) -> None:
    async with w.transactions.transaction() as tx:
        await w.directory.insert_links(tx, customer_id, pairs)


async def test_links_round_trip(world: World) -> None:
    d = world.directory
    before = datetime.now(UTC)
    await link(world, "alice", ("device", "d1"), ("phone", "+33600000000"), ("device", "d0"))
    await link(world, "bob", ("device", "d2"))
    assert await d.customers_of("device", ["d1", "d2", "d3", "d1"]) == {"d1": "alice", "d2": "bob"}
    assert await d.customers_of("phone", ["d1"]) == {}
    assert await d.customers_of("device", []) == {}
    assert await d.device_links() == {"d0": "alice", "d1": "alice", "d2": "bob"}
    mine = await d.of_customer("alice")
    assert [(t, v) for t, v, _ in mine] == [
        ("device", "d0"),
        ("device", "d1"),
        ("phone", "+33600000000"),
    ]
    assert all(abs((at - before).total_seconds()) < 60 for _, _, at in mine)
    assert await d.of_customer("nobody") == []
    async with world.transactions.transaction() as tx:
        pairs = [("device", "d1"), ("device", "d2"), ("device", "d9")]
        assert await d.owners(tx, pairs) == {("device", "d1"): "alice", ("device", "d2"): "bob"}


async def test_a_linked_identifier_keeps_its_owner(world: World) -> None:
    await link(world, "alice", ("device", "d1"))
    await link(world, "bob", ("device", "d1"), ("device", "d2"))
    assert await world.directory.customers_of("device", ["d1", "d2"]) == {
        "d1": "alice",
        "d2": "bob",
    }


async def test_unlinked_identifiers_are_free_again(world: World) -> None:
    d = world.directory
    await link(world, "alice", ("device", "d1"), ("cookie", "k1"))
    async with world.transactions.transaction() as tx:
        await d.delete_links(tx, [("device", "d1"), ("device", "never")])
    assert await d.device_links() == {}
    assert [(t, v) for t, v, _ in await d.of_customer("alice")] == [("cookie", "k1")]
    await link(world, "bob", ("device", "d1"))
    assert await d.customers_of("device", ["d1"]) == {"d1": "bob"}


async def test_a_failed_transaction_or_savepoint_links_nothing(world: World) -> None:
    d = world.directory
    await link(world, "alice", ("device", "d1"))
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            await d.insert_links(tx, "alice", [("device", "d2")])
            await d.delete_links(tx, [("device", "d1")])
            raise Boom
    assert await d.device_links() == {"d1": "alice"}
    async with world.transactions.transaction() as tx:
        await d.insert_links(tx, "alice", [("device", "d3")])
        with pytest.raises(Boom):
            async with tx.savepoint():
                await d.insert_links(tx, "alice", [("device", "d4")])
                await d.delete_links(tx, [("device", "d1")])
                raise Boom
    assert await d.device_links() == {"d1": "alice", "d3": "alice"}


# --- merging a device's history -----------------------------------------------------------------
def _ev(t: PresenceEventType, who: str, fence: str, ts: float) -> PresenceEvent:
    return PresenceEvent(t, who, fence, ts)


async def _seed_history(w: World) -> None:
    """The device walked into f1 and f2 on its own; alice (another of her devices) into f1
    after it: her open visit of f1 is superseded by the device's, which came first."""
    events = [
        _ev(PresenceEventType.ENTER, DEVICE, "f1", T),
        _ev(PresenceEventType.ENTER, "alice", "f3", T + 5),
        _ev(PresenceEventType.ENTER, DEVICE, "f2", T + 10),
        _ev(PresenceEventType.EXIT, "alice", "f3", T + 50),
        _ev(PresenceEventType.ENTER, "alice", "f1", T + 100),
        _ev(PresenceEventType.DWELL, DEVICE, "f1", T + 300),
        _ev(PresenceEventType.DWELL, "alice", "f1", T + 400),
        _ev(PresenceEventType.ENTER, "bob", "f1", T + 400),
    ]
    fixes = [
        RawFix(DEVICE, "d1", T, 48.86, 2.36, 10.0, None, None, False, None),
        RawFix("alice", "d7", T + 100, 48.86, 2.36, 10.0, None, None, False, None),
    ]
    async with w.transactions.transaction() as tx:
        await w.presence.write(
            tx,
            PresenceCommit(
                cursors={
                    DEVICE: CustomerCursor(T + 300, 48.86, 2.36),
                    "alice": CustomerCursor(T + 400, 48.86, 2.36),
                },
                states={
                    (DEVICE, "f1"): FenceState(T, T + 300),
                    (DEVICE, "f2"): FenceState(T + 10, T + 10),
                    ("alice", "f1"): FenceState(T + 100, T + 400),
                },
                events=events,
                raw_fixes=fixes,
            ),
        )


async def _history(w: World) -> list[tuple[str, str, str, float]]:
    return [
        (se.event.customer_id, str(se.event.type), se.event.geofence_id, se.event.ts)
        for se in await w.presence.events(EventQuery(limit=100))
    ]


async def test_reattribute_moves_the_device_history_to_its_customer(world: World) -> None:
    await _seed_history(world)
    async with world.transactions.transaction() as tx:
        moved = await world.directory.reattribute(tx, DEVICE, "alice", {"f1": ("alice", T + 100)})
    assert moved == 3
    assert await _history(world) == [
        ("alice", "enter", "f1", T),
        ("alice", "enter", "f3", T + 5),
        ("alice", "enter", "f2", T + 10),
        ("alice", "exit", "f3", T + 50),
        ("alice", "dwell", "f1", T + 300),
        ("bob", "enter", "f1", T + 400),  # another customer's visit is not hers to drop
    ]
    cursors, states = await world.presence.load()
    assert [c for c, _ in cursors] == ["alice"]
    assert sorted((c, f) for c, f, _ in states) == [("alice", "f1")]
    async with world.transactions.transaction() as tx:
        fixes = await world.profiles.fixes_since(tx, "m", datetime.now(UTC))
    assert [(f.customer_id, f.ts) for f in fixes] == [("alice", T), ("alice", T + 100)]


async def test_a_failed_reattribution_moves_nothing(world: World) -> None:
    await _seed_history(world)
    before = await _history(world)
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            await world.directory.reattribute(tx, DEVICE, "alice", {"f1": ("alice", T + 100)})
            raise Boom
    assert await _history(world) == before
    cursors, states = await world.presence.load()
    assert sorted(c for c, _ in cursors) == ["alice", DEVICE]
    assert len(states) == 3
    async with world.transactions.transaction() as tx:
        fixes = await world.profiles.fixes_since(tx, "m", datetime.now(UTC))
    assert [(f.customer_id, f.ts) for f in fixes] == [(DEVICE, T), ("alice", T + 100)]
