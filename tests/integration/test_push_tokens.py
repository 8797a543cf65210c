"""POST /v1/push-tokens and DELETE /v1/push-tokens/{token} (ingest key): upsert, a token
moving to another customer, validation naming the field, and erasure removing the tokens."""

from __future__ import annotations

import httpx
import pytest

from adapters.composition import Services
from adapters.delivery.customers import DeliveryDirectory
from tests.integration.test_beacons import _as, _key

APNS = "AB" * 32
FCM = "dGVzdA:APA91bH" + "x" * 140


async def test_register_upsert_and_move(client: httpx.AsyncClient, services: Services) -> None:
    ingest = _as(await _key(client, "ingest"))
    body = {"customer_id": "alice", "token": FCM, "provider": "fcm", "platform": "android"}
    r = await client.post("/v1/push-tokens", json=body, headers=ingest)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] is False
    assert (r.json()["customer_id"], r.json()["provider"]) == ("alice", "fcm")
    r = await client.post(
        "/v1/push-tokens",
        json={"customer_id": "alice", "token": APNS, "provider": "apns"},
        headers=ingest,
    )
    assert r.status_code == 200, r.text
    d = DeliveryDirectory(services.pool, None)
    assert await d.push_tokens_of("alice") == [FCM]
    assert await d.apns_tokens_of("alice") == [APNS.lower()]  # stored in lower case
    assert await d.push_providers_of("alice") == ["apns", "fcm"]  # the newest first
    # re-registered: the FCM token is the newest again
    r = await client.post("/v1/push-tokens", json=body, headers=ingest)
    assert r.json()["moved"] is False
    assert await d.push_providers_of("alice") == ["fcm", "apns"]
    # the same phone, now signed in as bob: the token moves
    r = await client.post("/v1/push-tokens", json=body | {"customer_id": "bob"}, headers=ingest)
    assert r.json()["moved"] is True
    assert await d.push_tokens_of("alice") == []
    assert await d.push_tokens_of("bob") == [FCM]
    assert await services.pool.fetchval("SELECT count(*) FROM push_tokens") == 2


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"token": "ab" * 31, "provider": "apns"}, "token", "64 hexadecimal digits"),
        ({"token": "zz" * 32, "provider": "apns"}, "token", "64 hexadecimal digits"),
        ({"token": "has space", "provider": "fcm"}, "token", "no whitespace"),
        ({"token": "", "provider": "fcm"}, "token", "at least 1 character"),
        ({"token": "x" * 4097, "provider": "fcm"}, "token", "at most 4096 characters"),
        ({"token": "abc", "provider": "hms"}, "provider", "'fcm' or 'apns'"),
        ({"token": "abc", "provider": "fcm", "platform": "I OS"}, "platform", "pattern"),
        ({"token": "abc", "provider": "fcm", "customer_id": ""}, "customer_id", "at least 1"),
    ],
)
async def test_invalid_tokens_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str, reason: str
) -> None:
    r = await client.post("/v1/push-tokens", json={"customer_id": "alice", **body})
    assert r.status_code == 422, r.text
    (err,) = r.json()["errors"]
    assert err["field"] == field
    assert reason in err["reason"]


async def test_delete_then_404_and_apns_in_any_case(
    client: httpx.AsyncClient, services: Services
) -> None:
    ingest = _as(await _key(client, "ingest"))
    for token, provider in ((FCM, "fcm"), (APNS, "apns")):
        body = {"customer_id": "alice", "token": token, "provider": provider}
        assert (await client.post("/v1/push-tokens", json=body)).status_code == 200
    r = await client.delete(f"/v1/push-tokens/{FCM}", headers=ingest)
    assert (r.status_code, r.json()) == (200, {"deleted": True})
    r = await client.delete(f"/v1/push-tokens/{FCM}", headers=ingest)
    assert r.status_code == 404
    assert r.json()["errors"][0]["field"] == "token"
    assert (await client.delete(f"/v1/push-tokens/{APNS}", headers=ingest)).status_code == 200
    assert await services.pool.fetchval("SELECT count(*) FROM push_tokens") == 0


async def test_erasure_removes_the_push_tokens(
    client: httpx.AsyncClient, services: Services
) -> None:
    body = {"customer_id": "carol", "token": APNS, "provider": "apns"}
    assert (await client.post("/v1/push-tokens", json=body)).status_code == 200
    r = await client.delete("/v1/customers/carol")
    assert r.status_code == 200, r.text
    assert r.json()["rows"]["push_tokens"] == 1
    assert await services.pool.fetchval("SELECT count(*) FROM push_tokens") == 0
