"""Every route of the OpenAPI schema × every role (issue 8): 401 without a key or with an
unknown one, 403 for a role not allowed, never 401/403 for an allowed one; and staff of store A
on store B's fences, beacons and NFC tags: 403 for every read and change.

The expected matrix is written here, not read from the code: a route added without an entry
defaults to admin only, so a new route open to more roles must be declared to pass."""

from __future__ import annotations

import re
from typing import Any

import httpx

from adapters.composition import Services
from tests.integration.test_beacons import _as, _key, ibeacon, store_with_zone

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
# /v1/stores: staff see their own stores; {store_id} stays unknown here ("x1": 404 for the
# admin, 403 for staff), as a known store's live stream would never end through ASGI
STAFF_PREFIXES = (
    "/v1/geofences",
    "/v1/beacons",
    "/v1/nfc-tags",
    "/v1/presence-events",
    "/v1/stores",
)
INGEST = {
    ("POST", "/v1/pings"),
    ("POST", "/v1/identities/link"),
    ("POST", "/v1/identities/unlink"),
    ("POST", "/v1/owntracks"),
    ("GET", "/v1/osmand"),
    ("POST", "/v1/osmand"),
    ("POST", "/v1/beacon-sightings"),
    ("POST", "/v1/nfc-taps"),
    ("POST", "/v1/events"),
    ("PUT", "/v1/customers/{customer_id}"),
    ("PUT", "/v1/customers/{customer_id}/consents"),
    ("POST", "/v1/interactions"),
    ("POST", "/v1/push-tokens"),
    ("DELETE", "/v1/push-tokens/{token}"),
}
STAFF = {
    ("GET", "/v1/customers/{customer_id}/presence"),
    ("POST", "/v1/redemptions"),
    ("GET", "/v1/redemptions"),  # filtered to the key's stores (tests/.../test_redemptions_list)
}
# authenticated by the provider's signature, not by a key: no key at all opens them, so every
# principal (admin too) calling without a valid signature is refused
SIGNED = {("POST", "/v1/callbacks/twilio/status"), ("POST", "/v1/callbacks/twilio/inbound")}
# path parameters: store B's objects, so staff of store A is refused on them
PARAMS = {"fence_id": "sB", "beacon_id": "bB", "tag_id": "tB", "customer_id": "c1"}


def allowed(method: str, path: str) -> set[str]:
    """Roles besides admin that may call the route (admin may call every route)."""
    if (method, path) in INGEST:
        return {"ingest"}
    if (method, path) in STAFF or (
        path.startswith(STAFF_PREFIXES) and path != "/v1/beacon-sightings"
    ):
        return {"staff"}
    return set()


def routes(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (m.upper(), p)
        for p, ops in schema["paths"].items()
        for m in ops
        if m in ("get", "post", "put", "delete", "patch")
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: PARAMS.get(m.group(1), "x1"), path)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = concrete(path)
    params = {"id": "unknown-device"} if path == "/v1/osmand" else None
    body: dict[str, Any] | None = None if method in ("GET", "DELETE") else {}
    if path == "/v1/osmand" and body is not None:
        body = {"device_id": "unknown-device"}  # Traccar's order: the id is read before auth
    return await client.request(method, url, headers=headers, json=body, params=params)


async def test_every_route_by_every_role(client: httpx.AsyncClient, services: Services) -> None:
    await store_with_zone(client, "sA")
    await store_with_zone(client, "sB")
    assert (
        await client.post("/v1/beacons", json=ibeacon(id="bB", geofence_id="sB-dept"))
    ).status_code == 201
    assert (
        await client.post("/v1/nfc-tags", json={"id": "tB", "geofence_id": "sB"})
    ).status_code == 201
    keys = {
        "ingest": _as(await _key(client, "ingest")),
        "staff": _as(await _key(client, "staff", ["sA"])),
        "gateway": _as(await _key(client, "gateway")),
        "no key": {"Authorization": ""},
        "unknown key": _as("ge_not-a-key"),
        "admin": {},  # the client's own header; last: its DELETEs remove the objects
    }
    schema = (await client.get("/openapi.json")).json()
    found = routes(schema)
    assert len(found) >= 40
    wrong: list[str] = []
    cells = 0
    for role, h in keys.items():
        for method, path in found:
            r = await call(client, method, path, h)
            cells += 1
            public = (method, path) in PUBLIC
            if (method, path) in SIGNED:
                ok = r.status_code in (401, 403)
            elif role in ("no key", "unknown key"):
                ok = r.status_code != 401 if public else r.status_code == 401
            elif role == "admin" or public or role in allowed(method, path):
                # allowed: never refused for auth; staff of sA on sB's objects: see below
                scoped = role == "staff" and path.startswith(STAFF_PREFIXES)
                ok = r.status_code != 401 and (r.status_code != 403 or scoped)
            else:
                ok = r.status_code == 403
            assert r.status_code < 500, (role, method, path, r.text)
            if not ok:
                wrong.append(f"{role} {method} {path} -> {r.status_code}")
    assert wrong == [], "\n".join(wrong)
    print(f"role x route matrix: {len(found)} routes x {len(keys)} principals = {cells} cells")


async def test_staff_of_store_a_on_store_b(client: httpx.AsyncClient) -> None:
    await store_with_zone(client, "sA")
    await store_with_zone(client, "sB")
    assert (
        await client.post("/v1/beacons", json=ibeacon(id="bB", geofence_id="sB-dept"))
    ).status_code == 201
    assert (
        await client.post("/v1/beacons", json=ibeacon(id="bA", minor=9, geofence_id="sA-dept"))
    ).status_code == 201
    assert (
        await client.post("/v1/nfc-tags", json={"id": "tB", "geofence_id": "sB"})
    ).status_code == 201
    staff = _as(await _key(client, "staff", ["sA"]))
    fence_b = (await client.get("/v1/geofences/sB")).json()
    beacon_b = (await client.get("/v1/beacons/bB")).json()
    refused = [
        ("GET", "/v1/geofences/sB", None),
        ("PUT", "/v1/geofences/sB", fence_b),
        ("DELETE", "/v1/geofences/sB", None),
        ("GET", "/v1/geofences/sB-dept", None),
        ("POST", "/v1/geofences", {**fence_b, "id": "new-in-b"}),
        ("GET", "/v1/beacons/bB", None),
        ("PUT", "/v1/beacons/bB", beacon_b),
        ("DELETE", "/v1/beacons/bB", None),
        ("POST", "/v1/beacons", ibeacon(id="new", minor=11, geofence_id="sB-dept")),
        ("PUT", "/v1/beacons/bA", {**beacon_b, "id": "bA", "minor": 9}),  # moving A's into B
        ("GET", "/v1/nfc-tags/tB", None),
        ("DELETE", "/v1/nfc-tags/tB", None),
        ("POST", "/v1/nfc-tags", {"id": "new", "geofence_id": "sB"}),
        ("POST", "/v1/redemptions", {"code": "ABCD-EFGH", "store_id": "sB"}),  # B's till
        ("GET", "/v1/redemptions?store_id=sB", None),  # B's redemptions
    ]
    for method, path, body in refused:
        r = await client.request(method, path, headers=staff, json=body)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    # and their own store's work
    assert (await client.get("/v1/geofences/sA", headers=staff)).status_code == 200
    assert (await client.get("/v1/beacons/bA", headers=staff)).status_code == 200
    listed = (await client.get("/v1/geofences", headers=staff)).json()["features"]
    assert {f["id"] for f in listed} == {"sA", "sA-dept"}
    # nothing of store B changed
    assert (await client.get("/v1/geofences/sB")).json() == fence_b
    assert (await client.get("/v1/nfc-tags/tB")).status_code == 200
