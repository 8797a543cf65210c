"""Offers, campaigns and suppression lists over HTTP on PostgreSQL: validation at save."""

from __future__ import annotations

import time
from typing import Any

import httpx

NOW = time.time()


def offer(oid: str = "o1", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": oid,
        "name": "10% off",
        "content": {
            "sms": {"text": "Bonjour {first_name}, -10% chez {store_name} : {code}. STOP 36180"},
            "push": {"title": "-10% ici", "body": "À {store_name}", "deep_link": "app://o/1"},
        },
        "valid_from": NOW - 86400,
        "valid_until": NOW + 30 * 86400,
        "value": 12.5,
        "category": "shoes",
        "redemption_cap": 1000,
    }
    doc.update(kw)
    return doc


def campaign(cid: str = "c1", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": cid,
        "status": "live",
        "start": NOW - 86400,
        "end": NOW + 30 * 86400,
        "triggers": [{"type": "presence", "event": "enter", "fence_kinds": ["store"]}],
        "conditions": {
            "all": [
                {"field": "profile.segment", "op": "in", "value": ["champions", "prospect"]},
                {"field": "context.local_hour", "op": "between", "value": [0, 24]},
            ]
        },
        "offer_ids": ["o1"],
        "channels": ["push", "sms"],
    }
    doc.update(kw)
    return doc


async def test_offer_crud(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/offers", json=offer())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sms_length"] == {"encoding": "gsm7", "units": 71, "segments": 1}
    assert (await client.post("/v1/offers", json=offer())).status_code == 409
    assert (await client.get("/v1/offers/o1")).json()["value"] == 12.5
    r = await client.put("/v1/offers/o1", json=offer(value=20.0))
    assert r.status_code == 200 and r.json()["value"] == 20.0
    assert (await client.get("/v1/offers/nope")).status_code == 404
    assert [o["id"] for o in (await client.get("/v1/offers")).json()["offers"]] == ["o1"]
    assert (await client.delete("/v1/offers/o1")).status_code == 204
    assert (await client.get("/v1/offers")).json()["offers"] == []


async def test_bad_offers_refused_nothing_saved(client: httpx.AsyncClient) -> None:
    bad = [
        (offer(content={"sms": {"text": "Salut {prenom}"}}), "content.sms.text"),
        (offer(content={"push": {"title": "x", "body": "{store}"}}), "content.push.body"),
        (offer(content={}), "content"),
        (offer(valid_until=NOW - 2 * 86400), "valid_until"),
        (offer(content={"sms": {"text": "ë" * 250}}), "content.sms.text"),
        (offer(value=-1), "value"),
        (offer(colour="red"), "colour"),
    ]
    for doc, field in bad:
        r = await client.post("/v1/offers", json=doc)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    assert (await client.get("/v1/offers")).json()["offers"] == []


async def test_campaign_crud(client: httpx.AsyncClient) -> None:
    await client.post("/v1/offers", json=offer())
    r = await client.post("/v1/campaigns", json=campaign())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "live"
    assert (await client.post("/v1/campaigns", json=campaign())).status_code == 409
    r = await client.put("/v1/campaigns/c1", json=campaign(status="paused", priority=3))
    assert r.status_code == 200 and r.json()["priority"] == 3
    listed = (await client.get("/v1/campaigns", params={"status": "paused"})).json()
    assert [c["id"] for c in listed["campaigns"]] == ["c1"]
    # nor changed so that the campaign has nothing left to send on its channels
    sms_only = offer(content={"sms": {"text": "-10%"}})
    r = await client.put("/v1/campaigns/c1", json=campaign(status="paused", channels=["push"]))
    assert r.status_code == 200
    r = await client.put("/v1/offers/o1", json=sms_only)
    assert r.status_code == 422 and "campaign c1" in r.json()["detail"], r.text
    # an offer a campaign may give cannot be deleted under it
    assert (await client.delete("/v1/offers/o1")).status_code == 409
    assert (await client.delete("/v1/campaigns/c1")).status_code == 204
    assert (await client.get("/v1/campaigns/c1")).status_code == 404
    assert (await client.delete("/v1/offers/o1")).status_code == 204


async def test_bad_campaigns_refused_nothing_saved(client: httpx.AsyncClient) -> None:
    await client.post("/v1/offers", json=offer())
    leaf = {"field": "profile.segment", "op": "eq", "value": "vip"}
    bad = [
        (campaign(end=NOW - 2 * 86400), "end"),
        (campaign(offer_ids=["o1", "ghost"]), "offer_ids.1"),
        (campaign(conditions={"all": [leaf]}), "conditions.all.0.value"),
        (
            campaign(conditions={"field": "profile.shoe_size", "op": "eq", "value": 1}),
            "conditions.field",
        ),
        (
            campaign(conditions={"field": "context.local_hour", "op": "in", "value": ["9"]}),
            "conditions.value.0",
        ),
        (campaign(triggers=[{"type": "presence", "event": "linger"}]), "triggers.0.event"),
        (
            campaign(triggers=[{"type": "velocity", "kpi": "visits", "direction": "rising"}]),
            "triggers.0.kpi",
        ),
        (campaign(channels=["fax"]), "channels.0"),
        (campaign(triggers=[]), "triggers"),
    ]
    for doc, field in bad:
        r = await client.post("/v1/campaigns", json=doc)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    assert (await client.get("/v1/campaigns")).json()["campaigns"] == []


async def test_suppression_list_import(client: httpx.AsyncClient) -> None:
    url = "/v1/suppression-lists/bad_payers/entries"
    r = await client.post(url, json={"customer_ids": ["a", "b", "a"]})
    assert r.status_code == 201 and r.json()["added"] == 2
    r = await client.post(url, json={"customer_ids": ["b", "c"]})
    assert r.json()["added"] == 1
    assert (await client.post(url, json={"customer_ids": []})).status_code == 422
