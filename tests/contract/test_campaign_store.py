"""One contract, two implementations: the campaign store (geo_engine/decision/ports.py) in
memory behaves as on PostgreSQL. What the relay and the outcome routes record (sent, redeemed,
clicked) has no port yet: each backend's `World` records it its own way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from adapters.db.campaigns import PgCampaignRepository
from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.memory.campaigns import MemoryCampaignStore
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from geo_engine.decision.bandit import ArmStats
from geo_engine.decision.codes import ALPHABET, CODE_LENGTH
from geo_engine.decision.decide import Decision, Usage
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.ports import (
    EVENT,
    PRESENCE,
    VELOCITY,
    CampaignStore,
    DecisionExists,
    NewTask,
    ReplayQuery,
)
from geo_engine.decision.rules import Sent
from geo_engine.models import PresenceEvent, PresenceEventType
from geo_engine.ports import PresenceCommit, PresenceStore, Transactions
from geo_engine.profile.ports import EventRecord, ProfileStore
from geo_engine.profile.velocity import Crossing

T = 1_790_000_000.0
H = 3600.0
DAY = 86400.0


class Boom(Exception):
    pass


@dataclass
class World:
    store: CampaignStore
    transactions: Transactions
    presence: PresenceStore
    profiles: ProfileStore
    deliver: Callable[[int, float], Awaitable[None]]  # the relay sent outbox row `id` at `ts`
    redeem: Callable[[str, float], Awaitable[None]]  # a till redeemed `code` at `ts`
    click: Callable[[int], Awaitable[None]]  # the app reported a click on outbox row `id`


def _memory() -> World:
    presence = MemoryPresenceStore()
    profiles = MemoryProfileStore(presence)
    store = MemoryCampaignStore(presence, profiles)

    async def deliver(oid: int, ts: float) -> None:
        store.mark_sent(oid, ts)

    async def redeem(code: str, ts: float) -> None:
        store.redeem(code, ts)

    async def click(oid: int) -> None:
        store.interact(oid, "clicked")

    return World(store, MemoryTransactions(), presence, profiles, deliver, redeem, click)


def _postgres(pool: asyncpg.Pool) -> World:
    async def deliver(oid: int, ts: float) -> None:
        await pool.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $2 WHERE id = $1", oid, _dt(ts)
        )

    async def redeem(code: str, ts: float) -> None:
        await pool.execute(
            "UPDATE redemption_codes SET redeemed_at = $2 WHERE code = $1", code, _dt(ts)
        )

    async def click(oid: int) -> None:
        await pool.execute(
            "INSERT INTO interactions (outbox_id, customer_id, campaign_id, kind, ts)"
            " SELECT id, customer_id, campaign_id, 'clicked', now() FROM outbox WHERE id = $1",
            oid,
        )

    return World(
        PgCampaignRepository(pool),
        PgTransactions(pool),
        PgPresenceStore(pool),
        PgProfileStore(pool),
        deliver,
        redeem,
        click,
    )


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    w = _memory() if request.param == "memory" else _postgres(clean_pool)
    for oid in ("o1", "o2"):
        await w.store.put_offer(oid, {"id": oid, "value": 5.0}, create=True)
    for cid, esc in (("c1", {"after_s": H}), ("c2", None)):
        doc = {"id": cid, "status": "live", "offer_ids": ["o1", "o2"], "escalation": esc}
        await w.store.put_campaign(cid, doc, create=True)
    yield w


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def decision(
    instance: str,
    *,
    who: str = "alice",
    ts: float = T,
    outcome: str = "send",
    campaign: str = "c1",
    offer: str = "o1",
    kind: str = "presence",
) -> Decision:
    trig = TriggerEvent(kind, "enter", who, ts, instance, fence_id="f1")
    if outcome not in ("send", "held"):
        return Decision(who, trig, outcome, None, None, None, None, None, ())
    return Decision(who, trig, outcome, campaign, offer, "sms", ts, ts + DAY, ())


def payload(code: str, value: float = 5.0) -> dict[str, object]:
    return {"value": value, "code": code, "sms": {"text": f"-10% with {code}", "segments": 1}}


async def record(w: World, d: Decision, code: str | None = None) -> int:
    async with w.transactions.transaction() as tx:
        return await w.store.record(tx, d, None, None if code is None else payload(code))


# --- catalogue ---------------------------------------------------------------------------------
async def test_offers_and_campaigns_round_trip(world: World) -> None:
    s = world.store
    assert await s.put_offer("o1", {"id": "o1"}, create=True) is None  # taken
    assert await s.put_offer("zz", {"id": "zz"}, create=False) is None  # unknown
    updated = await s.put_offer("o2", {"id": "o2", "value": 9.0}, create=False)
    assert updated is not None and updated.doc == {"id": "o2", "value": 9.0}
    assert updated.updated_at >= updated.created_at
    assert [(o.id, o.doc["value"]) for o in await s.offers()] == [("o1", 5.0), ("o2", 9.0)]
    doc = {"id": "c3", "status": "draft", "offer_ids": ["o1"], "escalation": None}
    created = await s.put_campaign("c3", doc, create=True)
    assert created is not None and (created.status, created.disabled_reason) == ("draft", None)
    assert [c.id for c in await s.campaigns()] == ["c1", "c2", "c3"]
    assert [c.id for c in await s.campaigns("live")] == ["c1", "c2"]


async def test_suppression_lists(world: World) -> None:
    s = world.store
    assert await s.add_suppressed("bad_payers", ["bob", "carol"]) == 2
    assert await s.add_suppressed("bad_payers", ["bob", "dan"]) == 1  # bob already on it
    assert await s.add_suppressed("partners", ["bob"]) == 1
    assert await s.all_suppressions() == {
        "bob": frozenset({"bad_payers", "partners"}),
        "carol": frozenset({"bad_payers"}),
        "dan": frozenset({"bad_payers"}),
    }
    async with world.transactions.transaction() as tx:
        assert await s.suppression_of(tx, "bob") == {"bad_payers", "partners"}
        assert await s.suppression_of(tx, "alice") == frozenset()


async def test_a_disabled_campaign_leaves_the_live_ones_until_saved_again(world: World) -> None:
    s = world.store
    async with world.transactions.transaction() as tx:
        await s.disable(tx, "c1", "conditions raised")
    assert [c.id for c in await s.campaigns("live")] == ["c2"]
    (c1,) = [c for c in await s.campaigns() if c.id == "c1"]
    assert (c1.status, c1.doc["status"], c1.disabled_reason) == (
        "disabled",
        "disabled",
        "conditions raised",
    )
    again = await s.put_campaign("c1", {**c1.doc, "status": "live"}, create=False)
    assert again is not None and (again.status, again.disabled_reason) == ("live", None)


# --- the decision log --------------------------------------------------------------------------
async def test_a_decision_keeps_its_explanation(world: World) -> None:
    from geo_engine.decision.trace import Trace

    chosen = Trace("c1", "o1", 6.25, "chosen", ("consent:sms", "cooldown:no"))
    stopped = Trace("c2", "o2", 3.0, "quiet_hours", ("consent:sms",))
    d = decision("pe:9")._replace(traces=(chosen, stopped), not_evaluated=("c3",))
    await record(world, d, "EXPL1234")
    (got,) = await world.store.recorded("alice")
    assert [(t["campaign_id"], t["result"], t["steps"]) for t in got.traces] == [
        ("c1", "chosen", ["consent:sms", "cooldown:no"]),
        ("c2", "quiet_hours", ["consent:sms"]),
        ("c3", "outranked", ["not_evaluated"]),
    ]
    assert got.traces[0]["score"] == 6.25 and got.traces[2]["offer_id"] is None


async def test_a_decision_is_recorded_with_its_outbox_row_and_code(world: World) -> None:
    s = world.store
    did = await record(world, decision("pe:1"), "ABCD1234")
    none = await record(world, decision("pe:2", outcome="none"))
    got = await s.recorded("alice")
    assert [r.decision_id for r in got] == [did, none] and did < none
    sent, quiet = got
    assert (sent.trigger_instance, sent.outcome, sent.campaign_id, sent.offer_id) == (
        "pe:1",
        "send",
        "c1",
        "o1",
    )
    assert sent.outbox_id is not None and sent.code == "ABCD1234"
    assert sent.payload == payload("ABCD1234")
    assert (quiet.outcome, quiet.outbox_id, quiet.code, quiet.payload) == ("none", None, None, None)
    assert await s.recorded("bob") == []
    async with world.transactions.transaction() as tx:
        assert await s.history(tx, "alice", T - DAY) == [Sent(T, "sms", "c1")]
        assert await s.usage(tx, ["o1", "o2"]) == {"o1": Usage(1, 5.0)}


async def test_a_replayed_trigger_gets_one_offer(world: World) -> None:
    s = world.store
    first = await record(world, decision("pe:1"), "AAAA1111")
    second = await record(world, decision("pe:1"), "BBBB2222")  # the same trigger again
    got = await s.recorded("alice")
    assert [r.decision_id for r in got] == [first, second]  # every decision is logged
    assert [r.code for r in got] == ["AAAA1111", None]  # one offer, one code
    assert got[1].outbox_id is None
    async with world.transactions.transaction() as tx:
        assert await s.usage(tx, ["o1"]) == {"o1": Usage(1, 5.0)}
        assert len(await s.history(tx, "alice", T - DAY)) == 1


async def test_a_taken_code_is_replaced_in_the_payload_too(world: World) -> None:
    await record(world, decision("pe:1"), "SAME0000")
    await record(world, decision("pe:2", who="bob"), "SAME0000")
    (bob,) = await world.store.recorded("bob")
    assert bob.code is not None and bob.code != "SAME0000"
    assert len(bob.code) == CODE_LENGTH and set(bob.code) <= set(ALPHABET)
    assert bob.payload is not None
    assert bob.payload["code"] == bob.code
    assert bob.payload["sms"] == {"text": f"-10% with {bob.code}", "segments": 1}


async def test_pressure_reads_the_window_and_the_calls(world: World) -> None:
    s = world.store
    old = await record(world, decision("pe:1", ts=T - 8 * DAY), "OLD00000")
    await record(world, decision("pe:2", ts=T - H, campaign="c2", offer="o2"), "NEW00000")
    await record(world, decision("pe:3", who="bob"), "BOB00000")
    task = NewTask("alice", "c1", None, old, "vel:1", "churn risk", 3, T - 2 * H, T + DAY)
    async with world.transactions.transaction() as tx:
        tid = await s.create_task(tx, task)
        assert tid is not None
        assert await s.create_task(tx, task) is None  # the same trigger: one task
        other = NewTask("alice", "c1", None, old, "vel:0", "churn risk", 3, T - 9 * DAY, T)
        assert await s.create_task(tx, other) not in (None, tid)
    async with world.transactions.transaction() as tx:
        assert await s.history(tx, "alice", T - 7 * DAY) == [Sent(T - H, "sms", "c2")]
        assert await s.call_history(tx, "alice", T - 7 * DAY) == [
            Sent(T - 2 * H, "call_center", "c1")
        ]
        assert await s.call_history(tx, "bob", T - 7 * DAY) == []
        usage = await s.usage(tx, ["o1", "o2", "o3"])
        assert usage == {"o1": Usage(2, 10.0), "o2": Usage(1, 5.0)}


async def test_a_transaction_that_raises_leaves_nothing(world: World) -> None:
    s = world.store
    kept = await record(world, decision("pe:0"), "KEPT0000")
    with pytest.raises(Boom):
        async with world.transactions.transaction() as tx:
            did = await s.record(tx, decision("pe:1"), None, payload("GONE0000"))
            task = NewTask("alice", "c1", None, did, "pe:1", "why", 0, T, T + DAY)
            assert await s.create_task(tx, task) is not None
            await s.disable(tx, "c1", "broken")
            raise Boom
    assert [r.decision_id for r in await s.recorded("alice")] == [kept]
    assert [c.id for c in await s.campaigns("live")] == ["c1", "c2"]
    async with world.transactions.transaction() as tx:
        assert await s.call_history(tx, "alice", 0.0) == []
        assert await s.usage(tx, ["o1"]) == {"o1": Usage(1, 5.0)}
        # the code and the trigger instance of the rolled-back offer are free again
        await s.record(tx, decision("pe:1"), None, payload("GONE0000"))
    assert [r.code for r in await s.recorded("alice")] == ["KEPT0000", "GONE0000"]


async def test_a_savepoint_rolled_back_undoes_only_its_part(world: World) -> None:
    s = world.store
    async with world.transactions.transaction() as tx:
        await s.record(tx, decision("pe:1"), None, payload("OUTER000"))
        with pytest.raises(Boom):
            async with tx.savepoint():
                await s.record(tx, decision("pe:2"), None, payload("INNER000"))
                await s.disable(tx, "c2", "broken")
                raise Boom
        # the decision reads what its own transaction wrote, and only that
        assert await s.history(tx, "alice", 0.0) == [Sent(T, "sms", "c1")]
    assert [r.trigger_instance for r in await s.recorded("alice")] == ["pe:1"]
    assert [c.id for c in await s.campaigns("live")] == ["c1", "c2"]


async def test_a_second_follow_up_of_an_offer_raises(world: World) -> None:
    follow = decision("esc:1", kind="followup", ts=T + H)
    await record(world, follow, "FOLLOW00")
    with pytest.raises(DecisionExists):
        await record(world, follow, "FOLLOW11")
    # other customers, and presence triggers, may repeat an instance
    await record(world, decision("esc:1", kind="followup", who="bob"), None)
    await record(world, decision("pe:1"), None)
    await record(world, decision("pe:1"), None)
    assert [r.trigger_instance for r in await world.store.recorded("alice")] == [
        "esc:1",
        "pe:1",
        "pe:1",
    ]


# --- outcomes: the bandit's arms and the follow-ups due ----------------------------------------
async def _sent(w: World, instance: str, at: float, **kw: object) -> tuple[int, str]:
    """An offer recorded and delivered at `at`: (outbox id, code)."""
    code = f"{instance.replace(':', '').upper():0<8}"[:8]
    d = decision(instance, ts=at - 60, **kw)  # type: ignore[arg-type]
    await record(w, d, code)
    got = [r for r in await w.store.recorded(d.customer_id) if r.trigger_instance == instance]
    oid = got[-1].outbox_id
    assert oid is not None
    await w.deliver(oid, at)
    return oid, code


async def test_arms_count_what_was_delivered_redeemed_and_clicked(world: World) -> None:
    a, code_a = await _sent(world, "pe:1", T)
    b, _ = await _sent(world, "pe:2", T)
    await _sent(world, "pe:3", T)
    await _sent(world, "pe:4", T - 40 * DAY)  # before the window
    await record(world, decision("pe:5"), "PE500000")  # pending: never reached anyone
    await record(world, decision("pe:6"), "PE600000")  # pending, but its code was redeemed
    await world.redeem("PE600000", T + H)
    await world.redeem(code_a, T + H)
    await world.click(a)  # redeemed and clicked: counts as redeemed only
    await world.click(b)
    await _sent(world, "pe:7", T, campaign="c2", offer="o2")
    assert await world.store.arms(T - 30 * DAY) == {
        ("c1", "o1"): ArmStats(sent=4, redeemed=2, clicked=1),
        ("c2", "o2"): ArmStats(sent=1, redeemed=0, clicked=0),
    }
    assert await world.store.arms(T + DAY) == {}


async def test_follow_ups_are_due_for_offers_left_without_reaction(world: World) -> None:
    now = T + 10 * DAY
    due, _ = await _sent(world, "pe:1", now - 2 * H)
    older, _ = await _sent(world, "pe:2", now - 3 * H)
    await _sent(world, "pe:3", now - 30 * 60)  # not yet: the campaign waits an hour
    clicked, _ = await _sent(world, "pe:4", now - 2 * H)
    await world.click(clicked)
    _, code = await _sent(world, "pe:5", now - 2 * H)
    await world.redeem(code, now - H)
    await _sent(world, "pe:6", now - 2 * H, campaign="c2")  # c2 does not escalate
    await _sent(world, "pe:7", now - 9 * DAY)  # past any allowed delay
    await _sent(world, "esc:99", now - 2 * H, kind="followup")  # a follow-up is not followed
    answered, _ = await _sent(world, "pe:8", now - 2 * H)
    await record(world, decision(f"esc:{answered}", kind="followup", ts=now - H))
    await record(world, decision("pe:9"), "PE900000")  # never sent
    got = await world.store.due_follow_ups(now, 10)
    assert [d.outbox_id for d in got] == [older, due]
    first = got[0]
    assert (first.customer_id, first.campaign_id, first.offer_id, first.channel) == (
        "alice",
        "c1",
        "o1",
        "sms",
    )
    assert (first.sent_at, first.fence_id) == (now - 3 * H, "f1")
    assert [d.outbox_id for d in await world.store.due_follow_ups(now, 1)] == [older]
    async with world.transactions.transaction() as tx:
        await world.store.disable(tx, "c1", "paused by the engine")
    assert await world.store.due_follow_ups(now, 10) == []


# --- the backtest's replay ---------------------------------------------------------------------
async def _seed_replay(w: World) -> None:
    async with w.transactions.transaction() as tx:
        events = [
            PresenceEvent(PresenceEventType.ENTER, "alice", "f1", T + 10, "gps"),
            PresenceEvent(PresenceEventType.EXIT, "alice", "f1", T + 30, "gps"),
            PresenceEvent(PresenceEventType.ENTER, "bob", "f2", T + 20, "beacon"),
            PresenceEvent(PresenceEventType.ENTER, "bob", "f2", T + 99, "gps"),  # after `until`
        ]
        await w.presence.write(tx, PresenceCommit(events=events))
        await w.profiles.insert_events(
            tx,
            [
                EventRecord("alice", "search", "app", T + 20, "{}", [], None, event_id="s1"),
                EventRecord("bob", "page_view", "web", T + 15, "{}", [], None, event_id="p1"),
                EventRecord("bob", "search", "web", T - 5, "{}", [], None),  # before `since`
            ],
        )
        crossings = [
            Crossing("carol", "store_visit", "stable", "falling", 1.0, 4.0, -75.0, T + 20, 7),
            Crossing("carol", "store_visit", "falling", "rising", 4.0, 1.0, 300.0, T + 25, 7),
            Crossing("dan", "page_view", "stable", "falling", 1.0, 4.0, -75.0, T + 5, 7),
        ]
        await w.profiles.insert_signals(tx, crossings)


async def _replayed(w: World, q: ReplayQuery, chunk: int = 100) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    async with aclosing(w.store.replay(q, limit=100, chunk=chunk)) as chunks:
        async for part in chunks:
            assert 0 < len(part) <= chunk
            rows += [tuple(r) for r in part]
    return rows


async def test_the_replay_merges_the_kinds_a_campaign_reads_in_time_order(world: World) -> None:
    await _seed_replay(world)
    q = ReplayQuery(_dt(T), _dt(T + 60), True, ["search"], ["store_visit:falling"])
    rows = await _replayed(world, q)
    assert rows == [
        (PRESENCE, 1, "alice", "f1", "enter", T + 10, "gps"),
        (PRESENCE, 3, "bob", "f2", "enter", T + 20, "beacon"),  # same time: presence first
        (EVENT, 1, "alice", None, "search", T + 20, "s1"),
        (VELOCITY, 1, "carol", "store_visit", "falling", T + 20, None),
        (PRESENCE, 2, "alice", "f1", "exit", T + 30, "gps"),
    ]
    assert await world.store.replay_count(q) == 5
    assert await _replayed(world, q, chunk=2) == rows
    async with aclosing(world.store.replay(q, limit=3, chunk=2)) as chunks:
        assert [len(part) async for part in chunks] == [2, 1]
    # only what the campaign listens to
    events_only = ReplayQuery(_dt(T), _dt(T + 60), False, ["page_view"])
    assert await _replayed(world, events_only) == [
        (EVENT, 2, "bob", None, "page_view", T + 15, "p1")
    ]
    assert await world.store.replay_count(events_only) == 1
    nothing = ReplayQuery(_dt(T), _dt(T + 60), False)
    assert await _replayed(world, nothing) == []
    assert await world.store.replay_count(nothing) == 0


async def test_a_replay_left_early_can_be_closed(world: World) -> None:
    await _seed_replay(world)
    q = ReplayQuery(_dt(T), _dt(T + 60), True)
    async with aclosing(world.store.replay(q, limit=100, chunk=1)) as chunks:
        async for _ in chunks:
            break
    assert await world.store.replay_count(q) == 3  # the store is still usable
