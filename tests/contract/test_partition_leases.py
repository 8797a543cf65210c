"""One contract, two implementations: the partition leases (geo_engine/cluster_ports.py) in memory
behave as on PostgreSQL. Expiry is real time: ttls of 0.2 s and a sleep of 0.3 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from adapters.db.cluster import PgPartitionLeases
from adapters.db.tx import PgTransactions
from adapters.memory.cluster import MemoryPartitionLeases
from adapters.memory.tx import MemoryTransactions
from geo_engine.cluster_ports import (
    Fenced,
    Lease,
    PartitionCountMismatch,
    PartitionLeases,
    PartitionRow,
    WorkerInfo,
)
from geo_engine.ports import Transactions

SHORT = 0.2  # a ttl that passes during PAST
PAST = 0.3
LONG = 30.0


class Boom(Exception):
    pass


@dataclass
class World:
    leases: PartitionLeases
    transactions: Transactions


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    if request.param == "memory":
        w = World(MemoryPartitionLeases(), MemoryTransactions())
    else:
        w = World(PgPartitionLeases(clean_pool), PgTransactions(clean_pool))
    await w.leases.configure(3)
    yield w


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(worker_id, f"host-{worker_id}", 100 + len(worker_id))


async def advance(w: World, partition: int, epoch: int, seq: int) -> None:
    async with w.transactions.transaction() as tx:
        await w.leases.advance(tx, partition, epoch, seq)


async def applied(w: World, partition: int) -> int:
    return (await w.leases.status())[1][partition].applied_seq


async def test_configure_creates_free_partitions(world: World) -> None:
    await world.leases.configure(3)  # the same count again: nothing changes
    assert await world.leases.owners() == {0: None, 1: None, 2: None}
    workers, parts = await world.leases.status()
    assert workers == []
    assert parts == [PartitionRow(p, None, 0, 0, None) for p in range(3)]


async def test_configure_refuses_another_count(world: World) -> None:
    for count in (4, 2):
        with pytest.raises(PartitionCountMismatch):
            await world.leases.configure(count)
    assert await world.leases.owners() == {0: None, 1: None, 2: None}


async def test_acquire_gives_epoch_one_and_holds_against_others(world: World) -> None:
    leases = world.leases
    assert await leases.acquire("w1", 1, LONG) == Lease(1, 1, 0)
    assert await leases.acquire("w2", 1, LONG) is None
    assert await leases.acquire("w2", 7, LONG) is None  # no such partition
    assert await leases.owners() == {0: None, 1: "w1", 2: None}
    assert await leases.acquire("w1", 1, LONG) == Lease(1, 2, 0)  # its own: a new epoch
    assert (await leases.status())[1][1] == PartitionRow(1, "w1", 2, 0, None)


async def test_takeover_after_ttl_fences_the_old_owner(world: World) -> None:
    leases = world.leases
    assert await leases.acquire("w1", 0, SHORT) == Lease(0, 1, 0)
    await advance(world, 0, 1, 5)
    await asyncio.sleep(PAST)
    assert await leases.owners() == {0: None, 1: None, 2: None}
    assert await leases.acquire("w2", 0, LONG) == Lease(0, 2, 5)  # resumes after seq 5
    with pytest.raises(Fenced) as fenced:
        await advance(world, 0, 1, 9)
    assert (fenced.value.partition, fenced.value.epoch) == (0, 1)
    assert await applied(world, 0) == 5
    await advance(world, 0, 2, 9)
    assert await applied(world, 0) == 9


async def test_advance_rolls_back_with_its_transaction(world: World) -> None:
    lease = await world.leases.acquire("w1", 2, LONG)
    assert lease is not None
    await advance(world, 2, lease.epoch, 3)
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            await world.leases.advance(tx, 2, lease.epoch, 7)
            raise Boom
    assert await applied(world, 2) == 3
    with pytest.raises(Boom):  # a savepoint undoes its own advance only
        async with world.transactions.transaction() as tx:
            await world.leases.advance(tx, 2, lease.epoch, 4)
            async with tx.savepoint():
                await world.leases.advance(tx, 2, lease.epoch, 6)
                raise Boom
    assert await applied(world, 2) == 3
    async with world.transactions.transaction() as tx:
        await world.leases.advance(tx, 2, lease.epoch, 4)
        with pytest.raises(Boom):
            async with tx.savepoint():
                await world.leases.advance(tx, 2, lease.epoch, 6)
                raise Boom
    assert await applied(world, 2) == 4


async def test_advance_keeps_the_max(world: World) -> None:
    lease = await world.leases.acquire("w1", 0, LONG)
    assert lease is not None
    for seq in (10, 4, 10, 12, 11):
        await advance(world, 0, lease.epoch, seq)
    assert await applied(world, 0) == 12
    assert await applied(world, 1) == 0
    # what an owner reads after a commit of unknown outcome
    assert await world.leases.applied_seq(0) == 12
    assert await world.leases.applied_seq(1) == 0


async def test_heartbeat_renews_held_leases_and_records_lag(world: World) -> None:
    leases = world.leases
    for p in (0, 1):
        assert await leases.acquire("w1", p, SHORT) is not None
    assert await leases.heartbeat(worker("w1"), SHORT, {0: 7, 1: 2, 2: 50}) == {0: 1, 1: 1}
    workers, parts = await leases.status()
    assert [(r.worker_id, r.host, r.pid) for r in workers] == [("w1", "host-w1", 102)]
    assert [r.lag for r in parts] == [7, 2, None]  # not the lag of a partition it does not hold
    await asyncio.sleep(PAST)
    assert await leases.acquire("w2", 1, LONG) == Lease(1, 2, 0)
    # partition 1 was taken over; 0 expired but nobody took it: still w1's, renewed
    assert await leases.heartbeat(worker("w1"), LONG, {0: 3, 1: 99}) == {0: 1}
    assert await leases.owners() == {0: "w1", 1: "w2", 2: None}
    assert await leases.acquire("w2", 0, LONG) is None
    workers, parts = await leases.status()
    assert [(r.partition, r.owner, r.epoch, r.lag) for r in parts] == [
        (0, "w1", 1, 3),
        (1, "w2", 2, None),
        (2, None, 0, None),
    ]
    assert workers[0].seen_at >= workers[0].started_at + PAST - 0.05
    assert await leases.heartbeat(worker("w1"), LONG, {}) == {0: 1}
    assert (await leases.status())[1][0].lag == 3  # no news keeps the last lag


async def test_release_frees_only_the_current_lease(world: World) -> None:
    leases = world.leases
    assert await leases.acquire("w1", 0, LONG) == Lease(0, 1, 0)
    assert await leases.acquire("w1", 0, LONG) == Lease(0, 2, 0)
    await leases.release("w1", 0, 1)  # a stale epoch
    await leases.release("w2", 0, 2)  # not its owner
    assert await leases.owners() == {0: "w1", 1: None, 2: None}
    await leases.release("w1", 0, 2)
    assert await leases.owners() == {0: None, 1: None, 2: None}
    assert await leases.heartbeat(worker("w1"), LONG, {}) == {}
    assert await leases.acquire("w2", 0, LONG) == Lease(0, 3, 0)


async def test_leave_frees_all_and_forgets_the_worker(world: World) -> None:
    leases = world.leases
    for w in ("w2", "w1"):
        await leases.heartbeat(worker(w), LONG, {})
    for p, w in ((0, "w1"), (1, "w2"), (2, "w1")):
        assert await leases.acquire(w, p, LONG) is not None
    assert await leases.live_workers(LONG) == ["w1", "w2"]
    await leases.leave("w1")
    assert await leases.owners() == {0: None, 1: "w2", 2: None}
    assert await leases.live_workers(LONG) == ["w2"]
    assert [r.worker_id for r in (await leases.status())[0]] == ["w2"]
    assert await leases.acquire("w2", 0, LONG) == Lease(0, 2, 0)


async def test_live_workers_drops_a_silent_worker(world: World) -> None:
    leases = world.leases
    for w in ("w3", "w1", "w2"):
        await leases.heartbeat(worker(w), SHORT, {})
    assert await leases.live_workers(SHORT) == ["w1", "w2", "w3"]
    await asyncio.sleep(PAST)
    await leases.heartbeat(worker("w2"), SHORT, {})
    assert await leases.live_workers(SHORT) == ["w2"]
    assert await leases.live_workers(LONG) == ["w1", "w2", "w3"]
    assert [r.worker_id for r in (await leases.status())[0]] == ["w1", "w2", "w3"]
