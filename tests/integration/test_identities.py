"""Identity resolution over HTTP: link, resolve, merge a device's presence, unlink, conflicts."""

from __future__ import annotations

import hashlib
import time

import httpx

from tests.helpers import LAT0, LON0, offset, ping, square_feature

T0 = time.time() - 3600.0


async def _link(
    client: httpx.AsyncClient, customer: str, *idents: tuple[str, str]
) -> httpx.Response:
    body = {"customer_id": customer, "identifiers": [{"type": t, "value": v} for t, v in idents]}
    return await client.post("/v1/identities/link", json=body)


async def test_linked_device_pings_resolve_to_the_customer(client: httpx.AsyncClient) -> None:
    await client.post("/v1/geofences", json=square_feature("shop"))
    r = await _link(client, "crm-1", ("device", "phone-a"))
    assert r.status_code == 200 and r.json()["linked"] == 1
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("phone-a", LAT0, LON0, T0, device=True)]}
    )
    assert [(e["type"], e["customer_id"]) for e in r.json()["events"]] == [("enter", "crm-1")]
    again = await _link(client, "crm-1", ("device", "phone-a"))
    assert again.status_code == 200 and again.json()["linked"] == 0  # idempotent


async def test_linking_merges_the_device_history_without_duplicates(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/geofences", json=square_feature("shop"))
    await client.post("/v1/geofences", json=square_feature("cafe", *offset(LAT0, LON0, 0, 600)))
    far = offset(LAT0, LON0, 400, 0)
    # anonymous phone: visits the cafe (closed visit), then is inside the shop
    cafe = offset(LAT0, LON0, 0, 600)
    anon = [
        ping("phone-b", *cafe, T0, device=True),
        ping("phone-b", *far, T0 + 200, device=True),
        ping("phone-b", LAT0, LON0, T0 + 800, device=True),
    ]
    r = await client.post("/v1/pings?wait=true", json={"pings": anon})
    assert [e["type"] for e in r.json()["events"]] == ["enter", "exit", "enter"]
    # the customer's other phone entered the shop earlier
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("crm-2", LAT0, LON0, T0 + 700)]}
    )
    assert [e["type"] for e in r.json()["events"]] == ["enter"]

    r = await _link(client, "crm-2", ("device", "phone-b"))
    assert r.status_code == 200, r.text
    events = (await client.get("/v1/presence-events", params={"customer_id": "crm-2"})).json()[
        "events"
    ]
    shop = [e["type"] for e in events if e["geofence_id"] == "shop"]
    cafe_events = [e["type"] for e in events if e["geofence_id"] == "cafe"]
    assert shop == ["enter"]  # one visit: the one that began first (crm-2's own)
    assert cafe_events == ["enter", "exit"]  # the device's past moved over
    gone = (
        await client.get("/v1/presence-events", params={"customer_id": "device:phone-b"})
    ).json()
    assert gone["events"] == []
    inside = (await client.get("/v1/customers/crm-2/presence")).json()["inside"]
    assert [(f["geofence_id"], f["since"][:19]) for f in inside] == [
        ("shop", events[-1]["ts"][:19])
    ]
    # later fixes from the linked phone continue the same visit: no second enter, one exit
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("phone-b", *far, T0 + 900, device=True)]}
    )
    assert [(e["type"], e["customer_id"]) for e in r.json()["events"]] == [("exit", "crm-2")]


async def test_conflicts_and_bad_identifiers(client: httpx.AsyncClient) -> None:
    assert (await _link(client, "crm-3", ("device", "d3"))).status_code == 200
    r = await _link(client, "crm-4", ("cookie", "ck"), ("device", "d3"))
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "identifiers[1]"
    ids = (await client.get("/v1/customers/crm-4/identities")).json()["identifiers"]
    assert ids == []  # all or nothing: the cookie was not linked either

    r = await _link(client, "crm-4", ("email_hash", "someone@example.com"))
    assert r.status_code == 422 and "SHA-256" in r.json()["detail"]
    r = await _link(client, "crm-4", ("phone", "12"))
    assert r.status_code == 422
    r = await _link(client, "device:x", ("cookie", "c"))
    assert r.status_code == 422
    digest = hashlib.sha256(b"someone@example.com").hexdigest().upper()
    r = await _link(client, "crm-4", ("phone", "06 12 34 56 78"), ("email_hash", digest))
    assert r.status_code == 200
    ids = (await client.get("/v1/customers/crm-4/identities")).json()["identifiers"]
    assert {(i["type"], i["value"]) for i in ids} == {
        ("phone", "+33612345678"),
        ("email_hash", digest.lower()),
    }


async def test_unlink(client: httpx.AsyncClient) -> None:
    await client.post("/v1/geofences", json=square_feature("shop"))
    await _link(client, "crm-5", ("device", "d5"))
    body = {"customer_id": "crm-5", "identifiers": [{"type": "device", "value": "d5"}]}
    assert (await client.post("/v1/identities/unlink", json=body)).status_code == 200
    r = await client.post("/v1/identities/unlink", json=body)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "identifiers[0]"
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("d5", LAT0, LON0, T0, device=True)]}
    )
    assert [e["customer_id"] for e in r.json()["events"]] == ["device:d5"]
    other = {"customer_id": "crm-6", "identifiers": [{"type": "device", "value": "d7"}]}
    await client.post("/v1/identities/link", json=other)
    steal = {"customer_id": "crm-5", "identifiers": [{"type": "device", "value": "d7"}]}
    assert (await client.post("/v1/identities/unlink", json=steal)).status_code == 409
