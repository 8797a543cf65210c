"""Behavioural-event triggers through the API on PostgreSQL: pings put the customer in (or
near) a store, POST /v1/events fires the event campaigns in the same commit as the events."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.integration.test_campaigns_api import campaign, offer

GRANTED = {"status": "granted", "at": "2026-01-05T09:00:00Z", "source": "app"}
SHOWROOMING = {
    "id": "showrooming",
    "name": "Showrooming: price match in store",
    "triggers": [
        {"type": "event", "event": "search", "in_store": True},
        {"type": "event", "event": "product_view", "in_store": True},
    ],
    "offer_ids": ["price-match"],
    "channels": ["push", "sms"],
    "cooldown_s": 86400,
}
CART_NEAR = {
    "id": "cart-near-store",
    "triggers": [{"type": "event", "event": "cart_abandon", "near_store_m": 500}],
    "offer_ids": ["cart-pickup"],
    "channels": ["push"],
}


async def _setup(c: httpx.AsyncClient, *campaigns: dict[str, Any]) -> None:
    fence = square_feature("opera", store_id="s-opera", name="Opéra Store")
    assert (await c.post("/v1/geofences", json=fence)).status_code == 201
    push_sms = {"push": GRANTED, "sms": GRANTED}
    for who in ("alice", "bob", "carol", "dave"):
        r = await c.put(f"/v1/customers/{who}", json={"consents": push_sms})
        assert r.status_code == 200, r.text
    pm = offer(
        "price-match",
        content={"push": {"title": "Prix aligné", "body": "Vu moins cher ? {store_name} s'aligne"}},
    )
    pickup = offer(
        "cart-pickup",
        content={"push": {"title": "Votre panier", "body": "À {distance_m} m : {store_name}"}},
    )
    for o in (pm, pickup):
        assert (await c.post("/v1/offers", json=o)).status_code == 201
    for doc in campaigns:
        body = campaign(**{**doc, "conditions": None})
        r = await c.post("/v1/campaigns", json=body)
        assert r.status_code == 201, r.text


async def _pings(c: httpx.AsyncClient, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    r = await c.post("/v1/pings?wait=true", json={"pings": list(rows)})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def _event(c: httpx.AsyncClient, who: str, type_: str, ts: float, **kw: Any) -> None:
    row = {"customer_id": who, "type": type_, "ts": ts, "channel": "app", **kw}
    r = await c.post("/v1/events?wait=true", json={"events": [row]})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] + len(r.json()["duplicates"]) == 1, r.text


async def _decisions(c: httpx.AsyncClient, who: str) -> list[dict[str, Any]]:
    r = await c.get("/v1/decisions", params={"customer_id": who})
    out: list[dict[str, Any]] = r.json()["decisions"]
    return out


async def test_search_in_store_gets_the_price_match(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, SHOWROOMING)
    now = time.time()
    far = offset(LAT0, LON0, 400, 0)
    events = await _pings(c, ping("alice", *far, now - 120), ping("alice", LAT0, LON0, now - 60))
    assert [e["type"] for e in events] == ["enter"]
    await _event(c, "alice", "search", now, event_id="s-1", properties={"query": "tv 55"})
    ds = await _decisions(c, "alice")
    ev = [d for d in ds if d["trigger_kind"] == "event"]
    assert len(ev) == 1, ds
    d = ev[0]
    assert (d["trigger_name"], d["trigger_instance"], d["outcome"], d["campaign_id"]) == (
        "search",
        "ev:s-1",
        "send",
        "showrooming",
    )
    assert d["idempotency_key"] == "alice|showrooming|ev:s-1"
    payload = await svc.pool.fetchval(
        "SELECT payload FROM outbox WHERE campaign_id = 'showrooming'"
    )
    assert payload["push"]["body"] == "Vu moins cher ? Opéra Store s'aligne"
    # the same event resent: a duplicate, no second decision
    await _event(c, "alice", "search", now, event_id="s-1", properties={"query": "tv 55"})
    assert len([d for d in await _decisions(c, "alice") if d["trigger_kind"] == "event"]) == 1
    # bob searches at home: not in a store, nothing fires, no row
    await _pings(c, ping("bob", *far, now - 60))
    await _event(c, "bob", "search", now, event_id="s-2", properties={"query": "tv"})
    assert await _decisions(c, "bob") == []
    # a page_view has no campaign: nothing
    await _event(c, "alice", "page_view", now, properties={"url": "https://x/y"})
    assert len(await _decisions(c, "alice")) == 1


async def test_cart_abandon_near_a_store(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, CART_NEAR)
    now = time.time()
    # bob 300 m north of the store centre: 250 m from its edge
    await _pings(c, ping("bob", *offset(LAT0, LON0, 300, 0), now - 120))
    await _event(c, "bob", "cart_abandon", now, event_id="ca-1")
    ds = await _decisions(c, "bob")
    assert [(d["trigger_kind"], d["trigger_name"], d["outcome"]) for d in ds] == [
        ("event", "cart_abandon", "send")
    ]
    body = await svc.pool.fetchval("SELECT payload->'push'->>'body' FROM outbox")
    assert body in {f"À {m} m : Opéra Store" for m in range(248, 253)}, body
    # carol 2 km away, dave near but his fix is an hour old: nothing
    await _pings(c, ping("carol", *offset(LAT0, LON0, 2000, 0), now - 60))
    await _event(c, "carol", "cart_abandon", now, event_id="ca-2")
    await _pings(c, ping("dave", *offset(LAT0, LON0, 300, 0), now - 3600))
    await _event(c, "dave", "cart_abandon", now, event_id="ca-3")
    assert await _decisions(c, "carol") == [] and await _decisions(c, "dave") == []


async def test_event_campaign_validation(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    await _setup(c)
    bad = [
        ({"triggers": [{"type": "event", "event": "teleport"}]}, "triggers.0.event"),
        (
            {"triggers": [{"type": "event", "event": "cart_abandon", "near_store_m": 60_000}]},
            "triggers.0.near_store_m",
        ),
        (
            {"triggers": [{"type": "event", "event": "cart_abandon", "near_store_m": 0}]},
            "triggers.0.near_store_m",
        ),
    ]
    for kw, field in bad:
        r = await c.post("/v1/campaigns", json=campaign(**{**CART_NEAR, **kw}))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field, r.text
    r = await c.post("/v1/campaigns", json=campaign(**CART_NEAR))
    assert r.status_code == 201, r.text
    assert r.json()["triggers"] == [
        {"type": "event", "event": "cart_abandon", "near_store_m": 500.0}
    ]
