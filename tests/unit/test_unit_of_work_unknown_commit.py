"""A commit of unknown outcome: the connection dies with COMMIT on its way and storage did commit.
The unit of work must not leave memory behind storage (a resent batch would enter twice): it
reads the touched customers back, at once or, while storage cannot be read, before the next
change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions, MemoryTx
from geo_engine.models import CustomerCursor, FenceState
from geo_engine.ports import EventQuery
from geo_engine.profile.attributes import ConsentPurpose
from tests.memory_engine import FAR, STORE, T, at, build_memory_services, store_feature


class AckLost(MemoryTransactions):
    """Commits, then reports the connection lost, while `lose` is set (what a client sees when
    the server committed and the reply never came)."""

    lose = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTx]:
        async with super().transaction() as tx:
            yield tx
        if self.lose:
            raise ConnectionError("connection lost during COMMIT")


class Unreadable(MemoryPresenceStore):
    """The memory store, which cannot be read back while `down` is set."""

    down = False

    async def load(
        self, customer_ids: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, CustomerCursor]], list[tuple[str, str, FenceState]]]:
        if self.down:
            raise ConnectionError("the database is unreachable")
        return await super().load(customer_ids)


async def _world(presence_type: type[MemoryPresenceStore] = MemoryPresenceStore):  # type: ignore[no-untyped-def]
    svc = await build_memory_services(features=[store_feature()], presence_type=presence_type)
    for who in ("alice", "bob"):
        await svc.grant(who, ConsentPurpose.LOCATION)
    txs = AckLost()
    svc.uow.transactions = txs  # the seam a lost connection comes through
    return svc, txs


WALK_IN = [at(FAR, "alice", T - 120), at(STORE, "alice", T)]


async def test_a_committed_batch_answered_as_failed_is_read_back_and_not_entered_twice() -> None:
    svc, txs = await _world()
    txs.lose = True
    with pytest.raises(ConnectionError):
        await svc.runtime.ingest(svc.pings(WALK_IN))
    # storage has the enter; memory was rolled back, then read back: inside, as stored
    assert [str(s.event.type) for s in await svc.presence.events(EventQuery())] == ["enter"]
    assert set(svc.live.engine.inside("alice")) == {"opera"}
    txs.lose = False
    again = await svc.runtime.ingest(svc.pings(WALK_IN))  # the client resends
    assert again.events == [] and {str(f) for _, f in again.flags} == {"late", "duplicate"}
    assert len(await svc.presence.events(EventQuery())) == 1


async def test_unreadable_storage_defers_the_read_back_to_the_next_change() -> None:
    svc, txs = await _world(Unreadable)
    store = svc.presence
    assert isinstance(store, Unreadable)
    txs.lose, store.down = True, True
    with pytest.raises(ConnectionError):
        await svc.runtime.ingest(svc.pings(WALK_IN))
    assert dict(svc.live.engine.inside("alice")) == {}  # rolled back; storage says otherwise
    txs.lose = False
    with pytest.raises(ConnectionError):  # still unreadable: no change on a memory in doubt
        await svc.runtime.ingest(svc.pings([at(STORE, "bob", T)]))
    assert svc.live.engine.cursor("bob") is None
    store.down = False
    again = await svc.runtime.ingest(svc.pings(WALK_IN))
    assert again.events == []  # read back first: alice is inside, the resend is a duplicate
    assert set(svc.live.engine.inside("alice")) == {"opera"}
    assert len(await svc.presence.events(EventQuery())) == 1
