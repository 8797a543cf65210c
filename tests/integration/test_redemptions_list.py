"""`GET /v1/redemptions`: the redeemed codes, oldest first, filtered by campaign, store and
time, paged by keyset without overlap; a staff key sees its stores' redemptions only (no
customer ids), is refused another store (403) and another store's cursor (422); bad input is
a 422 naming the field. Codes issued by the real issuer, redeemed through POST /v1/redemptions."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.composition import Services
from adapters.db.outcomes import issue_code
from tests.integration.test_beacons import _as, _key, store_with_zone
from tests.integration.test_relay import add_rows

NOW = time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


async def _issued(svc: Services, customer: str, campaign: str) -> str:
    (oid,) = await add_rows(svc.pool, 1, customer=customer)
    async with svc.pool.acquire() as conn, conn.transaction():
        did = await conn.fetchval("SELECT decision_id FROM outbox WHERE id = $1", oid)
        return await issue_code(
            conn,
            outbox_id=oid,
            decision_id=did,
            customer_id=customer,
            campaign_id=campaign,
            offer_id="o1",
            payload={},
            issued_at=datetime.fromtimestamp(NOW - 7200, UTC),
            send_after=datetime.fromtimestamp(NOW - 7200, UTC),
            valid_days=7,
        )


async def _world(client: httpx.AsyncClient, services: Services) -> dict[str, str]:
    """Codes by name: a1 (c1, sA, -50 min), b1 (c1, sB, -40), a2 (c2, sA, -30), a3 (c1, sA,
    -20); `unused` is never redeemed."""
    await store_with_zone(client, "sA")
    await store_with_zone(client, "sB")
    plan = [("a1", "c1", "sA", 50), ("b1", "c1", "sB", 40), ("a2", "c2", "sA", 30)]
    plan += [("a3", "c1", "sA", 20), ("unused", "c1", "", 0)]
    codes: dict[str, str] = {}
    for name, campaign, store, minutes_ago in plan:
        codes[name] = await _issued(services, f"cust-{name}", campaign)
        if store:
            body = {"code": codes[name], "store_id": store, "amount": 12.5}
            body["ts"] = _iso(NOW - minutes_ago * 60)
            r = await client.post("/v1/redemptions", json=body)
            assert r.status_code == 201, r.text
    return codes


def _codes(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["code"] for x in r.json()["redemptions"]]


async def test_admin_lists_filters_and_pages(client: httpx.AsyncClient, services: Services) -> None:
    c = await _world(client, services)
    r = await client.get("/v1/redemptions")
    assert _codes(r) == [c["a1"], c["b1"], c["a2"], c["a3"]]
    first: dict[str, Any] = r.json()["redemptions"][0]
    assert (first["store_id"], first["campaign_id"], first["customer_id"]) == (
        "sA",
        "c1",
        "cust-a1",
    )
    assert first["amount"] == 12.5 and first["message_id"] >= 1 and first["redeemed_by"]
    assert r.json()["next_after"] is None
    assert _codes(await client.get("/v1/redemptions?campaign_id=c2")) == [c["a2"]]
    assert _codes(await client.get("/v1/redemptions?store_id=sB")) == [c["b1"]]
    since = {"since": _iso(NOW - 35 * 60)}
    assert _codes(await client.get("/v1/redemptions", params=since)) == [c["a2"], c["a3"]]
    naive = {"since": datetime.fromtimestamp(NOW - 35 * 60, UTC).replace(tzinfo=None).isoformat()}
    assert _codes(await client.get("/v1/redemptions", params=naive)) == [c["a2"], c["a3"]]
    # pages of 3: no overlap, nothing missed, the cursor keeps the filters
    page = await client.get("/v1/redemptions?limit=3")
    assert _codes(page) == [c["a1"], c["b1"], c["a2"]]
    after = page.json()["next_after"]
    assert after == c["a2"]
    rest = await client.get("/v1/redemptions", params={"limit": 3, "after": after})
    assert _codes(rest) == [c["a3"]] and rest.json()["next_after"] is None
    page = await client.get("/v1/redemptions", params={"campaign_id": "c1", "limit": 1})
    assert _codes(page) == [c["a1"]]
    more = {"campaign_id": "c1", "limit": 5, "after": page.json()["next_after"]}
    assert _codes(await client.get("/v1/redemptions", params=more)) == [c["b1"], c["a3"]]


async def test_staff_see_their_stores_only(client: httpx.AsyncClient, services: Services) -> None:
    c = await _world(client, services)
    staff = _as(await _key(client, "staff", ["sA"]))
    r = await client.get("/v1/redemptions", headers=staff)
    assert _codes(r) == [c["a1"], c["a2"], c["a3"]]
    assert {x["customer_id"] for x in r.json()["redemptions"]} == {None}
    r = await client.get("/v1/redemptions?store_id=sA&campaign_id=c1", headers=staff)
    assert _codes(r) == [c["a1"], c["a3"]]
    r = await client.get("/v1/redemptions?store_id=sB", headers=staff)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "store_id", r.text
    # store B's code as a cursor: as unknown as a code that does not exist
    for cursor in (c["b1"], c["unused"]):
        r = await client.get("/v1/redemptions", params={"after": cursor}, headers=staff)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "after", r.text
    nobody = _as(await _key(client, "staff", ["elsewhere"]))
    assert _codes(await client.get("/v1/redemptions", headers=nobody)) == []
    ingest = _as(await _key(client, "ingest"))
    assert (await client.get("/v1/redemptions", headers=ingest)).status_code == 403


async def test_bad_input_names_the_field(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"after": "abc"}, "after"),
        ({"after": "ABCDEFGU"}, "after"),  # U is not in the alphabet
        ({"campaign_id": ""}, "campaign_id"),
    ):
        r = await client.get("/v1/redemptions", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"].endswith(field), (params, r.text)
