"""The backtest and the bandit refresh speak to storage only through the campaign store port:
with the memory stores, no database, they replay and learn as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from adapters.memory.campaigns import MemoryCampaignStore
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from adapters.services.backtest import count_events, run_backtest
from adapters.services.bandit import BanditRefresher, read_arms
from adapters.services.decisions import DecisionService
from geo_engine.decision.bandit import ArmStats
from geo_engine.decision.decide import Decision
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.rules import DecisionConfig
from geo_engine.models import PresenceEvent, PresenceEventType
from geo_engine.ports import PresenceCommit
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus
from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.state import ProfileState
from geofences.index import FenceIndex
from geofences.validation import fence_from_feature
from tests.helpers import square_feature
from tests.unit.test_decision import TUE_11, campaign_doc, offer_doc

CFG = DecisionConfig(holdout_pct=0.0, suppression_lists=frozenset({"bad_payers"}))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def _world() -> tuple[DecisionService, MemoryCampaignStore, MemoryPresenceStore]:
    presence = MemoryPresenceStore()
    store = MemoryCampaignStore(presence, MemoryProfileStore(presence))
    await store.put_offer("o1", offer_doc(), create=True)
    await store.put_campaign("c1", campaign_doc(channels=["push"]), create=True)
    state = ProfileState(ProfileConfig(), ref=TUE_11)
    granted = Consent(ConsentStatus.GRANTED, TUE_11 - 86400, "app")
    for who in ("alice", "bob", "carol"):
        state.set_consents(who, {ConsentPurpose.PUSH: granted})
    fence = fence_from_feature(square_feature("opera", store_id="opera"), fence_id="opera")
    # what the backtest reads of the live services: the profile state and the fence index
    profiles: Any = SimpleNamespace(state=state)
    live: Any = SimpleNamespace(index=FenceIndex.build([fence]))
    return DecisionService(store, profiles, live, CFG), store, presence


async def test_a_backtest_replays_the_memory_stores() -> None:
    dec, store, presence = await _world()
    walks = [
        PresenceEvent(PresenceEventType.ENTER, "alice", "opera", TUE_11),
        PresenceEvent(PresenceEventType.ENTER, "bob", "opera", TUE_11 + 60),
        PresenceEvent(PresenceEventType.EXIT, "alice", "opera", TUE_11 + 600),
        PresenceEvent(PresenceEventType.ENTER, "alice", "opera", TUE_11 + 3600),  # in the cooldown
        PresenceEvent(PresenceEventType.ENTER, "carol", "opera", TUE_11 + 7200),  # a bad payer
        PresenceEvent(PresenceEventType.ENTER, "dan", "opera", TUE_11 + 2 * 86400),  # after `until`
    ]
    async with MemoryTransactions().transaction() as tx:
        await presence.write(tx, PresenceCommit(events=walks))
    await store.add_suppressed("bad_payers", ["carol"])
    since, until = _dt(TUE_11 - 60), _dt(TUE_11 + 86400)
    assert await count_events(dec, store, "c1", since, until) == 5
    seen: list[int] = []
    run = await run_backtest(dec, store, "c1", since, until, chunk=2, on_chunk=seen.append)
    assert (run.events_read, seen) == (5, [2, 2, 1])
    res = run.result
    assert (res.events, res.offers) == (4, 2)
    assert res.by_reason == {"chosen": 2, "cooldown": 1, "suppressed": 1}
    assert res.by_store == {"opera": 2} and res.by_channel == {"push": 2}
    assert await store.recorded("alice") == []  # a backtest writes nothing


async def test_the_bandit_learns_from_the_memory_store() -> None:
    dec, store, _ = await _world()
    trig = TriggerEvent("presence", "enter", "alice", TUE_11, "pe:1", fence_id="opera")
    d = Decision("alice", trig, "send", "c1", "o1", "push", TUE_11, TUE_11 + 3600, ())
    async with MemoryTransactions().transaction() as tx:
        await store.record(tx, d, 1, {"value": 10.0, "code": "ABCD0000"})
    (rec,) = await store.recorded("alice")
    assert rec.outbox_id is not None
    store.mark_sent(rec.outbox_id, TUE_11 + 5)
    store.redeem("ABCD0000", TUE_11 + 600)
    refresher = BanditRefresher(store, dec, window_s=86400, interval_s=60, clock=lambda: TUE_11)
    snap = await refresher.refresh()
    assert dict(snap.arms) == {("c1", "o1"): ArmStats(sent=1, redeemed=1, clicked=0)}
    assert dec.arms is snap
    assert (await read_arms(store, TUE_11 + 60, TUE_11)).arms == {}
