"""One contract, two implementations: the campaign store (geo_engine/decision/ports.py) in
memory behaves as on PostgreSQL: the catalogue and the decision log. Its reads for the bandit,
the follow-ups and the backtest: test_campaign_store_reads.py."""

from __future__ import annotations

import pytest

from geo_engine.decision.codes import ALPHABET, CODE_LENGTH
from geo_engine.decision.decide import Usage
from geo_engine.decision.ports import (
    DecisionExists,
    NewTask,
)
from geo_engine.decision.rules import Sent
from tests.contract.campaign_world import DAY, Boom, H, T, World, decision, payload, record


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
