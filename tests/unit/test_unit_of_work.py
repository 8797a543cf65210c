"""The presence unit of work on the memory ports: a batch is stored and reacted to in one
transaction, and any failure after `begin` (the write, a reaction) or in `before` leaves the
engine's memory and every store as they were."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from adapters.memory.stores import MemoryPresenceStore
from adapters.services.reactions import Reactions
from adapters.services.unit_of_work import NO_CHANGE, Change
from geo_engine.models import CustomerCursor, FenceState, PresenceEvent
from geo_engine.ports import EventQuery, PresenceCommit, Tx
from geo_engine.presence import PresenceEngine
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus
from tests.memory_engine import (
    FAR,
    STORE,
    MemoryServices,
    T,
    at,
    build_memory_services,
    campaign_doc,
    offer_doc,
    store_feature,
)

LOCATION, PUSH = ConsentPurpose.LOCATION, ConsentPurpose.PUSH


class Boom(Exception):
    pass


class FailingReactions(Reactions):
    """The real pipeline, then a failure: what it wrote must go with the rest."""

    async def after_presence(self, tx: Tx, stored: list[tuple[int, PresenceEvent]]) -> None:
        await super().after_presence(tx, stored)
        raise Boom("a reaction failed")


class FailingWrite(MemoryPresenceStore):
    """The memory store, whose write fails (after applying, as a lost connection would) while
    `fail` is set."""

    fail = False

    async def write(self, tx: Tx, batch: PresenceCommit) -> list[int]:
        ids = await super().write(tx, batch)
        if self.fail:
            raise Boom("the presence write failed")
        return ids


@dataclass(frozen=True)
class Snapshot:
    """The engine's memory of a customer and everything the presence store holds."""

    cursor: CustomerCursor | None
    inside: dict[str, FenceState]
    cursors: dict[str, CustomerCursor]
    states: dict[tuple[str, str], FenceState]
    events: list[tuple[int, str, str, str]]  # (id, type, customer, fence)
    raw_fixes: int


def snapshot(svc: MemoryServices, who: str) -> Snapshot:
    engine, store = svc.live.engine, svc.presence
    return Snapshot(
        copy.copy(engine.cursor(who)),
        dict(engine.inside(who)),
        {k: copy.copy(v) for k, v in store.cursors.items()},
        {k: copy.copy(v) for k, v in store.states.items()},
        [(s.id, str(s.event.type), s.event.customer_id, s.event.geofence_id) for s in store.stored],
        len(store.raw_fixes),
    )


async def _world(presence_type: type[MemoryPresenceStore] = MemoryPresenceStore) -> MemoryServices:
    svc = await build_memory_services(
        features=[store_feature()],
        offers=[offer_doc()],
        campaigns=[campaign_doc()],
        presence_type=presence_type,
    )
    await svc.grant("alice", LOCATION, PUSH)
    await svc.grant("bob", LOCATION, PUSH)
    return svc


async def test_a_batch_is_stored_and_reacted_to() -> None:
    svc = await _world()
    res = await svc.runtime.ingest(svc.pings([at(FAR, "alice", T - 120), at(STORE, "alice", T)]))
    assert (res.accepted, res.flags, res.dropped) == (2, [], [])
    ((pid, ev),) = res.events
    assert (str(ev.type), ev.customer_id, ev.geofence_id, ev.ts) == ("enter", "alice", "opera", T)
    # stored: the event under the id the result gives, both raw fixes, cursor and state
    (stored,) = await svc.presence.events(EventQuery(customer_id="alice"))
    assert (stored.id, stored.event) == (pid, ev)
    assert [f.ts for f in svc.presence.raw_fixes] == [T - 120, T]
    assert svc.presence.cursors["alice"].last_ts == T
    assert set(svc.presence.states) == {("alice", "opera")}
    assert set(svc.live.engine.inside("alice")) == {"opera"}
    # reacted, in the same transaction: the enter decided an offer
    (rec,) = await svc.campaigns.recorded("alice")
    assert (rec.trigger_instance, rec.outcome, rec.campaign_id) == (f"pe:{pid}", "send", "c1")
    assert rec.outbox_id is not None


async def test_flagged_fixes_are_reported_by_row_and_counted_by_flag() -> None:
    svc = await _world()
    await svc.runtime.ingest(svc.pings([at(FAR, "alice", T)]))

    def counted(flag: str) -> float:
        return REGISTRY.get_sample_value("geo_ping_flags_total", {"flag": flag}) or 0.0

    late, dup = counted("late"), counted("duplicate")
    rows = [at(FAR, "alice", T - 60), at(FAR, "bob", T), at(FAR, "alice", T), at(FAR, "alice", T)]
    res = await svc.runtime.ingest(svc.pings([*rows, at(FAR, "alice", T - 30)]))
    assert [(i, str(f)) for i, f in res.flags] == [
        (0, "late"),
        (2, "duplicate"),
        (3, "duplicate"),
        (4, "late"),
    ]
    assert (counted("late") - late, counted("duplicate") - dup) == (2, 2)


async def test_a_failing_reaction_undoes_the_whole_change() -> None:
    svc = await _world()
    await svc.runtime.ingest(svc.pings([at(FAR, "alice", T - 120)]))
    before = snapshot(svc, "alice")
    assert before.cursor is not None and before.inside == {}
    svc.uow.reactions = FailingReactions(svc.profiles, svc.decisions)
    with pytest.raises(Boom):
        await svc.runtime.ingest(svc.pings([at(STORE, "alice", T)]))
    assert snapshot(svc, "alice") == before  # engine memory and store: nothing moved
    # what the reactions wrote in the transaction went too: no decision, no outbox row
    assert await svc.campaigns.recorded("alice") == []
    assert svc.campaigns.outbox == {}
    # the same fix again, reactions working: processed as new (it did not become LATE)
    svc.uow.reactions = svc.reactions
    res = await svc.runtime.ingest(svc.pings([at(STORE, "alice", T)]))
    assert [(str(e.type), e.ts) for _, e in res.events] == [("enter", T)]
    assert len(await svc.campaigns.recorded("alice")) == 1


async def test_a_failing_write_undoes_the_whole_change() -> None:
    svc = await _world(presence_type=FailingWrite)
    store = svc.presence
    assert isinstance(store, FailingWrite)
    await svc.runtime.ingest(svc.pings([at(FAR, "alice", T - 120)]))
    before = snapshot(svc, "alice")
    store.fail = True
    with pytest.raises(Boom):
        await svc.runtime.ingest(svc.pings([at(STORE, "alice", T), at(STORE, "bob", T)]))
    assert snapshot(svc, "alice") == before
    assert svc.live.engine.cursor("bob") is None and dict(svc.live.engine.inside("bob")) == {}
    assert await svc.campaigns.recorded("alice") == []  # never reached the reactions
    store.fail = False
    res = await svc.runtime.ingest(svc.pings([at(STORE, "alice", T)]))
    assert [str(e.type) for _, e in res.events] == ["enter"]
    assert [s.id for s in store.stored] == [pid for pid, _ in res.events]


async def test_before_raising_changes_nothing() -> None:
    svc = await _world()
    await svc.runtime.ingest(svc.pings([at(FAR, "alice", T - 120)]))
    before = snapshot(svc, "alice")
    consents_before = copy.deepcopy(svc.profile_store.consents)
    applied: list[bool] = []

    async def before_step(tx: Tx) -> None:
        # storage work the change depends on, written in the transaction, then a refusal
        refused = Consent(ConsentStatus.REVOKED, T, "app")
        await svc.profile_store.put_consents(tx, "alice", {LOCATION: refused})
        raise Boom("the identifier is taken")

    def apply(engine: PresenceEngine) -> Change:
        applied.append(True)
        engine.drop_fence("opera")
        return NO_CHANGE

    with pytest.raises(Boom):
        await svc.uow.transact(apply, before=before_step)
    assert applied == []  # the change itself never ran
    assert snapshot(svc, "alice") == before
    assert svc.profile_store.consents == consents_before  # before's own write undone
    assert not svc.uow.lock.locked()


async def test_the_lock_serialises_concurrent_changes() -> None:
    """Two batches at once: the second begins only once the first committed, so neither sees
    (nor, failing, undoes) the other's half-made change."""
    svc = await _world()
    log: list[str] = []
    gate = asyncio.Event()

    class SlowReactions(Reactions):
        async def after_presence(self, tx: Tx, stored: list[tuple[int, PresenceEvent]]) -> None:
            (who,) = {e.customer_id for _, e in stored}
            log.append(f"{who}: reacting")
            if who == "alice":
                await gate.wait()  # hold the first change open across awaits
            await super().after_presence(tx, stored)
            log.append(f"{who}: reacted")

    svc.uow.reactions = SlowReactions(svc.profiles, svc.decisions)
    first = asyncio.create_task(svc.runtime.ingest(svc.pings([at(STORE, "alice", T)])))
    second = asyncio.create_task(svc.runtime.ingest(svc.pings([at(STORE, "bob", T)])))
    for _ in range(20):  # let both run as far as they can
        await asyncio.sleep(0)
    assert log == ["alice: reacting"]
    # bob's batch has not even been applied while alice's change is open
    assert svc.live.engine.cursor("bob") is None
    assert [s.event.customer_id for s in svc.presence.stored] == ["alice"]
    gate.set()
    a, b = await asyncio.gather(first, second)
    assert log == ["alice: reacting", "alice: reacted", "bob: reacting", "bob: reacted"]
    assert [pid for pid, _ in a.events] == [1] and [pid for pid, _ in b.events] == [2]
    assert [(s.id, s.event.customer_id) for s in svc.presence.stored] == [(1, "alice"), (2, "bob")]
    assert set(svc.live.engine.inside("bob")) == {"opera"}


async def test_a_failed_change_does_not_undo_the_one_queued_behind_it() -> None:
    svc = await _world()
    gate = asyncio.Event()

    class FirstFails(Reactions):
        async def after_presence(self, tx: Tx, stored: list[tuple[int, PresenceEvent]]) -> None:
            await super().after_presence(tx, stored)
            if stored[0][1].customer_id == "alice":
                await gate.wait()
                raise Boom("alice's reaction failed")

    svc.uow.reactions = FirstFails(svc.profiles, svc.decisions)
    first = asyncio.create_task(svc.runtime.ingest(svc.pings([at(STORE, "alice", T)])))
    second = asyncio.create_task(svc.runtime.ingest(svc.pings([at(STORE, "bob", T)])))
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(a, Boom)
    assert not isinstance(b, BaseException)
    assert [str(e.type) for _, e in b.events] == ["enter"]
    assert dict(svc.live.engine.inside("alice")) == {}
    assert set(svc.live.engine.inside("bob")) == {"opera"}
    assert [s.event.customer_id for s in svc.presence.stored] == ["bob"]
    assert await svc.campaigns.recorded("alice") == []
    assert [r.outcome for r in await svc.campaigns.recorded("bob")] == ["send"]
