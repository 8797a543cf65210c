"""One contract, two implementations: the campaign store's reads, for the bandit (arms), the
follow-ups due and the backtest's replay, in memory as on PostgreSQL."""

from __future__ import annotations

from contextlib import aclosing

from geo_engine.decision.bandit import ArmStats
from geo_engine.decision.ports import (
    EVENT,
    PRESENCE,
    VELOCITY,
    ReplayQuery,
)
from geo_engine.models import PresenceEvent, PresenceEventType
from geo_engine.ports import PresenceCommit
from geo_engine.profile.ports import EventRecord
from geo_engine.profile.velocity import Crossing
from tests.contract.campaign_world import DAY, H, T, World, _dt, decision, record


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
