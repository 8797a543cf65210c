"""Escalation on PostgreSQL: an offer sent (by the relay) with no open, click nor redemption
gets one follow-up on the next channel after `after_s`; never twice, even with runners racing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.composition import Services
from adapters.db.tx import PgTransactions
from adapters.delivery.escalation import Escalator
from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.integration.test_campaigns_api import campaign, offer
from tests.integration.test_event_triggers import GRANTED

ESC = {"after_s": 3600, "channels": ["sms"]}


async def _setup(c: httpx.AsyncClient, who: tuple[str, ...], **camp: Any) -> None:
    fence = square_feature("opera", store_id="opera", name="Opéra")
    assert (await c.post("/v1/geofences", json=fence)).status_code == 201
    for w in who:
        r = await c.put(f"/v1/customers/{w}", json={"consents": {"push": GRANTED, "sms": GRANTED}})
        assert r.status_code == 200, r.text
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    r = await c.post("/v1/campaigns", json=campaign(escalation=ESC, conditions=None, **camp))
    assert r.status_code == 201, r.text


async def _walk_in_and_send(c: httpx.AsyncClient, svc: Services, *who: str) -> dict[str, int]:
    """Each customer enters the store, gets a push; the relay sends it. Outbox ids by customer."""
    now = time.time()
    far = offset(LAT0, LON0, 400, 0)
    rows = [p for w in who for p in (ping(w, *far, now - 120), ping(w, LAT0, LON0, now - 60))]
    assert (await c.post("/v1/pings?wait=true", json={"pings": rows})).status_code == 200
    assert svc.relay is not None
    stats = await svc.relay.run_once()
    assert stats.sent == len(who), stats
    got = await svc.pool.fetch("SELECT id, customer_id, channel, status FROM outbox")
    assert {(r["customer_id"], r["channel"], r["status"]) for r in got} == {
        (w, "push", "sent") for w in who
    }
    return {r["customer_id"]: r["id"] for r in got}


async def _followups(svc: Services) -> list[dict[str, Any]]:
    rows = await svc.pool.fetch(
        "SELECT d.customer_id, d.trigger_kind, d.trigger_instance, d.outcome, d.channel,"
        " o.channel AS o_channel, o.idempotency_key FROM decisions d"
        " LEFT JOIN outbox o ON o.decision_id = d.id WHERE d.trigger_kind = 'followup'"
        " ORDER BY d.customer_id"
    )
    return [dict(r) for r in rows]


async def test_no_reaction_gets_one_sms_follow_up(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, ("alice", "bob", "carol"))
    ids = await _walk_in_and_send(c, svc, "alice", "bob", "carol")
    # bob opened his push; carol redeemed her code at the till
    t = datetime.now(UTC).isoformat()
    item = {"message_id": ids["bob"], "customer_id": "bob", "kind": "opened", "ts": t}
    r = await c.post("/v1/interactions", json={"items": [item]})
    assert r.status_code == 200, r.text
    code = await svc.pool.fetchval(
        "SELECT code FROM redemption_codes WHERE outbox_id = $1", ids["carol"]
    )
    r = await c.post("/v1/redemptions", json={"code": code, "store_id": "opera"})
    assert r.status_code == 201, r.text
    assert svc.decisions is not None
    esc = Escalator(svc.decisions, PgTransactions(svc.pool))
    assert await esc.run_once(time.time() + 600) == {}  # not due yet
    later = time.time() + 3700
    assert await esc.run_once(later) == {"chosen": 1}
    assert await _followups(svc) == [
        {
            "customer_id": "alice",
            "trigger_kind": "followup",
            "trigger_instance": f"esc:{ids['alice']}",
            "outcome": "send",
            "channel": "sms",
            "o_channel": "sms",
            "idempotency_key": f"alice|c1|esc:{ids['alice']}",
        }
    ]
    sms = await svc.pool.fetchval("SELECT payload->'sms'->>'text' FROM outbox WHERE channel='sms'")
    assert "Opéra" in sms  # the first offer's store fills the template
    # again, and once the follow-up itself is sent: never a second one, never a follow-up's
    assert await esc.run_once(later + 60) == {}
    assert svc.relay is not None
    await svc.relay.run_once()
    assert await esc.run_once(later + 7200) == {}
    assert len(await _followups(svc)) == 1


async def test_follow_up_stopped_by_consent_is_recorded_once(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, ("alice",))
    ids = await _walk_in_and_send(c, svc, "alice")
    revoked = {"status": "revoked", "at": "2026-02-01T09:00:00Z", "source": "app"}
    r = await c.put("/v1/customers/alice", json={"consents": {"sms": revoked}})
    assert r.status_code == 200, r.text
    assert svc.decisions is not None
    esc = Escalator(svc.decisions, PgTransactions(svc.pool))
    assert await esc.run_once(time.time() + 3700) == {"no_consent": 1}
    got = await _followups(svc)
    assert [(d["outcome"], d["o_channel"], d["trigger_instance"]) for d in got] == [
        ("none", None, f"esc:{ids['alice']}")
    ]
    assert await esc.run_once(time.time() + 3800) == {}  # decided: not looked at again


async def test_racing_runners_make_one_follow_up(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    who = tuple(f"c{i}" for i in range(6))
    await _setup(c, who)
    await _walk_in_and_send(c, svc, *who)
    assert svc.decisions is not None
    runners = [Escalator(svc.decisions, PgTransactions(svc.pool)) for _ in range(4)]
    at = time.time() + 3700
    results = await asyncio.gather(*(r.run_once(at) for r in runners))
    assert sum(r.get("chosen", 0) for r in results) == len(who)
    got = await _followups(svc)
    assert sorted(d["customer_id"] for d in got) == sorted(who)
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox WHERE channel = 'sms'") == 6


async def test_escalation_validated_at_save(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    bad = [
        ({"after_s": 10, "channels": ["sms"]}, "escalation.after_s"),
        ({"after_s": 3600, "channels": ["fax"]}, "escalation.channels.0"),
        ({"after_s": 3600, "channels": []}, "escalation.channels"),
    ]
    for esc, field in bad:
        r = await c.post("/v1/campaigns", json=campaign(escalation=esc))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.text
    r = await c.post(
        "/v1/campaigns",
        json=campaign(channels=["push"], escalation={"after_s": 60, "channels": ["push"]}),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "escalation.channels"
    r = await c.post("/v1/campaigns", json=campaign(escalation=ESC))
    assert r.status_code == 201, r.text
    assert r.json()["escalation"] == {"after_s": 3600.0, "channels": ["sms"]}
    assert r.json()["action"] == "message"


async def test_follow_up_of_a_search_in_store_keeps_the_store(open_client) -> None:  # type: ignore[no-untyped-def]
    """A behavioural trigger has no presence event: the follow-up finds the store the search was
    located at through the decision's fence (migration 013)."""
    c, svc = open_client
    fence = square_feature("opera", store_id="s-opera", name="Opéra Store")
    assert (await c.post("/v1/geofences", json=fence)).status_code == 201
    r = await c.put("/v1/customers/alice", json={"consents": {"push": GRANTED, "sms": GRANTED}})
    assert r.status_code == 200, r.text
    content = {
        "push": {"title": "Prix aligné", "body": "{store_name} s'aligne"},
        "sms": {"text": "Vu moins cher ? {store_name} s'aligne. STOP au 36111"},
    }
    assert (
        await c.post("/v1/offers", json=offer("price-match", content=content))
    ).status_code == 201
    body = campaign(
        id="showrooming",
        triggers=[{"type": "event", "event": "search", "in_store": True}],
        offer_ids=["price-match"],
        channels=["push", "sms"],
        escalation=ESC,
        conditions=None,
    )
    assert (await c.post("/v1/campaigns", json=body)).status_code == 201
    now = time.time()
    far = offset(LAT0, LON0, 400, 0)
    rows = [ping("alice", *far, now - 120), ping("alice", LAT0, LON0, now - 60)]
    assert (await c.post("/v1/pings?wait=true", json={"pings": rows})).status_code == 200
    ev = {"customer_id": "alice", "type": "search", "ts": now, "event_id": "s-1", "channel": "app"}
    r = await c.post(
        "/v1/events?wait=true", json={"events": [{**ev, "properties": {"query": "tv 55"}}]}
    )
    assert r.json()["accepted"] == 1, r.text
    assert svc.relay is not None
    assert (await svc.relay.run_once()).sent == 1
    r = await c.get("/v1/decisions", params={"customer_id": "alice"})
    (first,) = r.json()["decisions"]
    assert (first["trigger_kind"], first["fence_id"]) == ("event", "opera")
    assert svc.decisions is not None
    assert await Escalator(svc.decisions, PgTransactions(svc.pool)).run_once(now + 3700) == {
        "chosen": 1
    }
    sms = await svc.pool.fetchval("SELECT payload->'sms'->>'text' FROM outbox WHERE channel='sms'")
    assert sms.startswith("Vu moins cher ? Opéra Store s'aligne"), sms
    (f,) = await _followups(svc)
    assert (f["trigger_kind"], f["outcome"], f["channel"]) == ("followup", "send", "sms")
