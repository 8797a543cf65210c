"""DecisionService on the memory campaign store, with the profile service on memory: presence
and velocity triggers decide, record the decision and its outbox row in the trigger's
transaction; a replayed trigger gives no second offer; a failed recording only loses the
decision, never the presence change."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from adapters.memory.campaigns import MemoryCampaignStore
from geo_engine.decision.codes import ALPHABET, CODE_LENGTH
from geo_engine.decision.decide import Decision
from geo_engine.ports import EventQuery, Tx
from geo_engine.profile.attributes import Attributes, ConsentPurpose
from geo_engine.profile.velocity import Crossing
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

LOCATION, PUSH, SMS = ConsentPurpose.LOCATION, ConsentPurpose.PUSH, ConsentPurpose.SMS
CODE = re.compile(f"^[{ALPHABET}]{{{CODE_LENGTH}}}$")


class RecordFails(MemoryCampaignStore):
    """The memory store, whose `record` fails after writing the decision and its outbox row."""

    async def record(
        self, tx: Tx, d: Decision, presence_event_id: int | None, payload: dict[str, Any] | None
    ) -> int:
        await super().record(tx, d, presence_event_id, payload)
        raise RuntimeError("the outbox insert failed")


async def _world(
    campaign_type: type[MemoryCampaignStore] = MemoryCampaignStore,
    campaigns: tuple[dict[str, Any], ...] = (campaign_doc(),),
    offers: tuple[dict[str, Any], ...] = (offer_doc(),),
    **overrides: Any,
) -> MemoryServices:
    return await build_memory_services(
        features=[store_feature()],
        offers=offers,
        campaigns=campaigns,
        campaign_type=campaign_type,
        **overrides,
    )


async def _walk_in(svc: MemoryServices, who: str = "alice", t: float = T) -> int:
    """`who` walks into the store at `t`; the id of the stored enter."""
    res = await svc.runtime.ingest(svc.pings([at(FAR, who, t - 120), at(STORE, who, t)]))
    ((pid, ev),) = res.events
    assert (str(ev.type), ev.geofence_id) == ("enter", "opera")
    return pid


async def _results(svc: MemoryServices, who: str) -> list[list[tuple[str, str]]]:
    """Per recorded decision of `who`, (campaign, result) of each campaign considered."""
    return [
        [(t["campaign_id"], t["result"]) for t in r.traces]
        for r in await svc.campaigns.recorded(who)
    ]


async def test_entering_a_store_with_consent_decides_and_records_the_offer() -> None:
    svc = await _world()
    await svc.grant("alice", LOCATION, PUSH)
    pid = await _walk_in(svc)
    (rec,) = await svc.campaigns.recorded("alice")
    assert (rec.trigger_instance, rec.outcome) == (f"pe:{pid}", "send")
    assert (rec.campaign_id, rec.offer_id, rec.channel) == ("c1", "o1", "push")
    # the outbox payload: the offer rendered for this trigger, carrying its redemption code
    assert rec.outbox_id is not None and rec.payload is not None and rec.code is not None
    assert CODE.match(rec.code)
    assert rec.payload == {
        "value": 12.5,
        "code": rec.code,
        "push": {
            "title": "-10% chez Opéra",
            "body": f"Votre code {rec.code}",
            "deep_link": "app://o/1",
        },
    }
    row = svc.campaigns.outbox[rec.outbox_id]
    assert (row.customer_id, row.send_after, row.status) == ("alice", T, "pending")
    assert await _results(svc, "alice") == [[("c1", "chosen")]]


async def test_sms_renders_the_first_name_and_the_opt_out() -> None:
    svc = await _world(campaigns=(campaign_doc(channels=["sms"]),))
    await svc.grant("alice", LOCATION, SMS)
    await svc.profiles.put_customer("alice", Attributes(first_name="Alice"), {})
    await _walk_in(svc)
    (rec,) = await svc.campaigns.recorded("alice")
    assert rec.channel == "sms" and rec.payload is not None
    text = rec.payload["sms"]["text"]
    assert text.startswith(f"Bonjour Alice, -10% chez Opéra : {rec.code}.")
    assert "STOP" in text


async def test_the_same_trigger_replayed_gives_no_second_offer() -> None:
    # no cooldown, no pressure cap in reach: only the outbox's key can stop a second offer
    caps: dict[str, Any] = {
        f"decision_max_per_{span}": 100 for span in ("day", "week", "channel_day", "channel_week")
    }
    svc = await _world(campaigns=(campaign_doc(cooldown_s=0),), **caps)
    await svc.grant("alice", LOCATION, PUSH)
    await _walk_in(svc)
    (enter,) = await svc.presence.events(EventQuery(customer_id="alice", type="enter"))
    async with svc.transactions.transaction() as tx:  # the reaction delivered a second time
        await svc.decisions.on_presence(tx, [(enter.id, enter.event)])
    first, again = await svc.campaigns.recorded("alice")
    assert first.trigger_instance == again.trigger_instance == f"pe:{enter.id}"
    assert (first.outcome, again.outcome) == ("send", "send")  # decided to send twice...
    assert first.outbox_id is not None
    assert again.outbox_id is None  # ...but the replay wrote no second outbox row
    assert list(svc.campaigns.outbox) == [first.outbox_id]


async def test_the_same_trigger_replayed_under_the_default_cooldown() -> None:
    svc = await _world()
    await svc.grant("alice", LOCATION, PUSH)
    await _walk_in(svc)
    (enter,) = await svc.presence.events(EventQuery(customer_id="alice", type="enter"))
    async with svc.transactions.transaction() as tx:
        await svc.decisions.on_presence(tx, [(enter.id, enter.event)])
    assert [r.outcome for r in await svc.campaigns.recorded("alice")] == ["send", "none"]
    assert (await _results(svc, "alice"))[1] == [("c1", "cooldown")]
    assert len(svc.campaigns.outbox) == 1


async def test_a_customer_without_consent_gets_a_no_consent_trace() -> None:
    svc = await _world()
    await svc.grant("bob", LOCATION)  # may be located, not messaged
    pid = await _walk_in(svc, "bob")
    (rec,) = await svc.campaigns.recorded("bob")
    assert (rec.trigger_instance, rec.outcome, rec.outbox_id) == (f"pe:{pid}", "none", None)
    assert await _results(svc, "bob") == [[("c1", "no_consent")]]
    assert svc.campaigns.outbox == {}


async def test_a_velocity_crossing_decides_through_the_reactions() -> None:
    falling = campaign_doc(
        "winback",
        triggers=[{"type": "velocity", "kpi": "store_visit", "direction": "falling"}],
        offer_ids=["o2"],
        channels=["push"],
    )
    o2 = offer_doc(
        "o2", content={"push": {"title": "On vous attend", "body": "{code}", "deep_link": "a://"}}
    )
    svc = await _world(campaigns=(campaign_doc(), falling), offers=(offer_doc(), o2))
    await svc.grant("carol", PUSH)
    crossing = Crossing("carol", "store_visit", "stable", "falling", 0.0, 4.0, -100.0, T, 7)
    rising = Crossing("carol", "page_view", "stable", "rising", 5.0, 0.0, None, T, 7)
    async with svc.transactions.transaction() as tx:
        await svc.reactions.after_crossings(tx, [crossing, rising])  # no campaign on page_view
    (rec,) = await svc.campaigns.recorded("carol")
    assert rec.trigger_instance == f"vel:store_visit:falling:{int(T)}"
    assert (rec.outcome, rec.campaign_id, rec.offer_id, rec.channel) == (
        "send",
        "winback",
        "o2",
        "push",
    )
    assert rec.payload is not None and rec.payload["push"]["body"] == rec.code


async def test_a_velocity_crossing_decided_in_a_failed_transaction_is_undone() -> None:
    falling = campaign_doc(
        "winback", triggers=[{"type": "velocity", "kpi": "store_visit", "direction": "falling"}]
    )
    svc = await _world(campaigns=(falling,))
    await svc.grant("carol", PUSH)
    crossing = Crossing("carol", "store_visit", "stable", "falling", 0.0, 4.0, -100.0, T, 7)
    with pytest.raises(LookupError):
        async with svc.transactions.transaction() as tx:
            await svc.reactions.after_crossings(tx, [crossing])
            assert len(await svc.campaigns.recorded("carol")) == 1  # written in tx
            raise LookupError("the signal's insert failed")
    assert await svc.campaigns.recorded("carol") == []
    assert svc.campaigns.outbox == {} and svc.campaigns.codes == {}


async def test_a_failed_recording_spares_the_presence_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = await _world(campaign_type=RecordFails)
    await svc.grant("alice", LOCATION, PUSH)
    svc.clock.now = T + 400
    dwell_at = T + 310
    with caplog.at_level(logging.ERROR, logger="adapters.services.decisions"):
        res = await svc.runtime.ingest(
            svc.pings(
                [at(FAR, "alice", T - 120), at(STORE, "alice", T), at(STORE, "alice", dwell_at)]
            )
        )
    assert [(str(e.type), e.ts) for _, e in res.events] == [("enter", T), ("dwell", T + 300)]
    assert "decision failed for alice" in caplog.text
    # the presence change committed: events stored, engine and store say alice is inside
    stored = await svc.presence.events(EventQuery(customer_id="alice"))
    assert [(s.id, str(s.event.type)) for s in stored] == [
        (pid, str(e.type)) for pid, e in res.events
    ]
    assert set(svc.live.engine.inside("alice")) == {"opera"}
    assert set(svc.presence.states) == {("alice", "opera")}
    # so did the store visit written before the decision, in the same transaction
    dwell_id = res.events[1][0]
    visits = [e.record for e in svc.profile_store.events]
    assert [(v.type, v.presence_event_id) for v in visits] == [("store_visit", dwell_id)]
    # only the decision's savepoint was undone: no decision, no outbox row, no code
    assert await svc.campaigns.recorded("alice") == []
    assert svc.campaigns.outbox == {} and svc.campaigns.codes == {}
