"""Decisions end to end on PostgreSQL: a ping makes a presence event, the hook decides in the
same commit, the decision, its explanation and the outbox row are stored."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from geo_engine.decision.book import Book
from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.integration.test_campaigns_api import campaign, offer

T0 = time.time() - 1800.0
GRANTED = {"status": "granted", "at": "2026-01-05T09:00:00Z", "source": "app"}


async def _setup(c: httpx.AsyncClient, consents: dict[str, Any], **camp: Any) -> None:
    r = await c.post("/v1/geofences", json=square_feature("opera", store_id="opera"))
    assert r.status_code == 201, r.text
    r = await c.put("/v1/customers/alice", json={"first_name": "Léa", "consents": consents})
    assert r.status_code == 200, r.text
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    r = await c.post("/v1/campaigns", json=campaign(**camp))
    assert r.status_code == 201, r.text


async def _walk_in(c: httpx.AsyncClient, who: str = "alice", t: float = T0) -> list[dict[str, Any]]:
    far = offset(LAT0, LON0, 400, 0)
    r = await c.post(
        "/v1/pings?wait=true", json={"pings": [ping(who, *far, t), ping(who, LAT0, LON0, t + 60)]}
    )
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def test_enter_gives_one_offer_with_outbox_row(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, {"push": GRANTED, "sms": GRANTED})
    events = await _walk_in(c)
    assert [e["type"] for e in events] == ["enter"]
    ds = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert len(ds) == 1
    d = ds[0]
    assert (d["outcome"], d["campaign_id"], d["offer_id"], d["channel"]) == (
        "send",
        "c1",
        "o1",
        "push",
    )
    assert d["presence_event_id"] == events[0]["id"]
    assert d["idempotency_key"] == f"alice|c1|pe:{events[0]['id']}"
    assert d["outbox_status"] == "pending"
    assert d["traces"][0]["result"] == "chosen"
    row = await svc.pool.fetchrow("SELECT * FROM outbox")
    assert row["expires_at"] > row["send_after"]
    assert row["payload"]["push"]["title"] == "-10% ici"
    assert row["payload"]["push"]["body"] == "À opera"
    # filters
    assert (await c.get("/v1/decisions", params={"campaign_id": "zz"})).json()["decisions"] == []
    assert (
        len((await c.get("/v1/decisions", params={"campaign_id": "c1"})).json()["decisions"]) == 1
    )


async def test_no_consent_and_suppression_are_explained(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, {"email": GRANTED}, suppression_lists=["bad_payers"])
    await _walk_in(c)
    d = (await c.get("/v1/decisions")).json()["decisions"][0]
    assert (d["outcome"], d["traces"][0]["result"]) == ("none", "no_consent")
    await c.put("/v1/customers/bob", json={"consents": {"sms": GRANTED}})
    await c.post("/v1/suppression-lists/bad_payers/entries", json={"customer_ids": ["bob"]})
    await _walk_in(c, "bob")
    d = (await c.get("/v1/decisions", params={"customer_id": "bob"})).json()["decisions"][0]
    assert d["traces"][0]["result"] == "suppressed"
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_cooldown_second_visit_no_second_offer(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    await _setup(c, {"push": GRANTED})
    await _walk_in(c)
    far = offset(LAT0, LON0, 400, 0)
    await c.post("/v1/pings?wait=true", json={"pings": [ping("alice", *far, T0 + 400)]})  # exit
    await _walk_in(c, t=T0 + 800)
    ds = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert [d["outcome"] for d in ds] == ["send", "none"]
    assert ds[1]["traces"][0]["result"] == "cooldown"


async def test_broken_campaign_disabled_others_go_on(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, {"push": GRANTED})
    r = await c.post("/v1/campaigns", json=campaign("c2", priority=5))
    assert r.status_code == 201
    book = svc.decisions.book
    bad = book.campaigns["c2"]

    def boom(_: object) -> bool:
        raise KeyError("corrupt")

    fields = {f: getattr(bad, f) for f in bad.__slots__}
    broken = type(bad)(**{**fields, "condition": boom})
    svc.decisions.book = Book([book.campaigns["c1"], broken], book.offers)
    await _walk_in(c)
    d = (await c.get("/v1/decisions")).json()["decisions"][0]
    assert d["campaign_id"] == "c1"
    c2 = (await c.get("/v1/campaigns/c2")).json()
    assert c2["status"] == "disabled" and "KeyError" in c2["disabled_reason"]
    assert "c2" not in svc.decisions.book.campaigns


async def test_ping_path_survives_a_failing_decision(open_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, {"push": GRANTED})

    async def fail(*_: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(svc.decisions.repo, "history", fail)
    events = await _walk_in(c)
    assert [e["type"] for e in events] == ["enter"]  # the presence event is committed
    n = await svc.pool.fetchval("SELECT count(*) FROM presence_events")
    assert n == 1
    assert await svc.pool.fetchval("SELECT count(*) FROM decisions") == 0


async def test_backtest_replays_without_writing(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, {"push": GRANTED}, status="draft")
    await c.put("/v1/customers/bob", json={"consents": {"sms": GRANTED}})
    await _walk_in(c)
    await _walk_in(c, "bob")
    await _walk_in(c, "carol")  # no consent at all
    assert await svc.pool.fetchval("SELECT count(*) FROM decisions") == 0  # a draft: silent
    body = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    r = await c.post("/v1/campaigns/c1/backtest", json=body)
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["events_read"], b["events"], b["offers"]) == (3, 3, 2)
    assert b["by_channel"] == {"push": 1, "sms": 1}
    assert b["by_reason"] == {"chosen": 2, "no_consent": 1}
    assert b["by_store"] == {"opera": 2}
    assert await svc.pool.fetchval("SELECT count(*) FROM decisions") == 0
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0
    bad = {"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}
    assert (await c.post("/v1/campaigns/c1/backtest", json=bad)).status_code == 422
    assert (await c.post("/v1/campaigns/zz/backtest", json=body)).status_code == 404


async def test_velocity_crossing_decides_in_the_signal_transaction(open_client) -> None:  # type: ignore[no-untyped-def]
    from adapters.db.tx import PgTransactions
    from geo_engine.profile.velocity import Crossing

    c, svc = open_client
    trig = [{"type": "velocity", "kpi": "interest", "direction": "falling"}]
    await _setup(c, {"sms": GRANTED}, triggers=trig, conditions=None, channels=["sms"])
    crossing = Crossing("alice", "interest", "stable", "falling", 2.0, 10.0, -80.0, T0, 7)
    async with PgTransactions(svc.pool).transaction() as tx:
        await svc.reactions.after_crossings(tx, [crossing])
        await svc.reactions.after_crossings(tx, [crossing])  # the same signal again: one offer
    ds = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert ds[0]["trigger_kind"] == "velocity" and ds[0]["channel"] == "sms"
    assert ds[0]["trigger_instance"] == f"vel:interest:falling:{int(T0)}"
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 1
    payload = await svc.pool.fetchval("SELECT payload FROM outbox")
    assert payload["sms"]["text"].startswith("Bonjour Léa, -10% chez")
    # the template has its STOP mention (CPCE L34-5): the default one is not added again
    assert payload["sms"]["text"].count("STOP") == 1
    assert (payload["sms"]["encoding"], payload["sms"]["segments"]) == ("gsm7", 1)


@pytest.mark.parametrize(("hours", "outcome"), [({}, "none"), (None, "none"), ("all", "send")])
async def test_store_open_comes_from_the_fence_opening_hours(open_client, hours, outcome) -> None:  # type: ignore[no-untyped-def]
    """`context.store_open` in a live decision: a store listing no day is closed, one without
    hours is unknown (so the condition does not hold), one open all week is open."""
    c, _ = open_client
    props: dict[str, Any] = {}
    if hours == "all":
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        props["opening_hours"] = {d: [["00:00", "24:00"]] for d in days}
    elif hours is not None:
        props["opening_hours"] = hours
    r = await c.post("/v1/geofences", json=square_feature("opera", store_id="opera", **props))
    assert r.status_code == 201, r.text
    consents = {"push": GRANTED, "sms": GRANTED}
    r = await c.put("/v1/customers/alice", json={"first_name": "Léa", "consents": consents})
    assert r.status_code == 200, r.text
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    cond = {"all": [{"field": "context.store_open", "op": "eq", "value": True}]}
    r = await c.post("/v1/campaigns", json=campaign(conditions=cond))
    assert r.status_code == 201, r.text
    assert [e["type"] for e in await _walk_in(c)] == ["enter"]
    ds = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert [d["outcome"] for d in ds] == [outcome]
