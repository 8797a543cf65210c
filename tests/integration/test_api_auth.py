"""Keys, roles and store scopes."""

from __future__ import annotations

import httpx

from tests.helpers import square_feature


async def _key(client: httpx.AsyncClient, role: str, stores: list[str] | None = None) -> str:
    r = await client.post(
        "/v1/api-keys", json={"name": f"{role} key", "role": role, "store_ids": stores or []}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_missing_or_wrong_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/geofences", headers={"Authorization": ""})
    assert r.status_code == 401
    r = await client.get("/v1/geofences", headers=_as("ge_not_a_key"))
    assert r.status_code == 401


async def test_roles_and_store_scope(client: httpx.AsyncClient) -> None:
    ingest = await _key(client, "ingest")
    staff_a = await _key(client, "staff", ["A"])
    assert (await client.get("/v1/geofences", headers=_as(ingest))).status_code == 403
    assert (
        await client.post("/v1/api-keys", headers=_as(staff_a), json={"name": "x", "role": "admin"})
    ).status_code == 403

    r = await client.post(
        "/v1/geofences", headers=_as(staff_a), json=square_feature("a1", store_id="A")
    )
    assert r.status_code == 201
    r = await client.post(
        "/v1/geofences", headers=_as(staff_a), json=square_feature("b1", store_id="B")
    )
    assert r.status_code == 403
    await client.post("/v1/geofences", json=square_feature("b1", store_id="B"))  # admin
    assert (await client.get("/v1/geofences/b1", headers=_as(staff_a))).status_code == 403
    assert (await client.delete("/v1/geofences/b1", headers=_as(staff_a))).status_code == 403
    listed = (await client.get("/v1/geofences", headers=_as(staff_a))).json()["features"]
    assert [f["id"] for f in listed] == ["a1"]
    assert (
        await client.get("/v1/geofences", headers=_as(staff_a), params={"store_id": "B"})
    ).status_code == 403
    assert (
        await client.post("/v1/pings?wait=true", headers=_as(staff_a), json={"pings": []})
    ).status_code == 403
    assert (
        await client.post("/v1/pings?wait=true", headers=_as(ingest), json={"pings": []})
    ).status_code == 200


async def test_keys_are_shown_once_and_revocable(client: httpx.AsyncClient) -> None:
    key = await _key(client, "ingest")
    listed = (await client.get("/v1/api-keys")).json()
    assert all("key" not in k for k in listed)
    assert key.startswith(listed[0]["key_prefix"])
    assert (
        await client.post("/v1/pings?wait=true", headers=_as(key), json={"pings": []})
    ).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{listed[0]['id']}")).status_code == 204
    assert (
        await client.post("/v1/pings?wait=true", headers=_as(key), json={"pings": []})
    ).status_code == 401
    assert (await client.delete(f"/v1/api-keys/{listed[0]['id']}")).status_code == 404


async def test_staff_key_needs_stores(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/api-keys", json={"name": "s", "role": "staff"})
    assert r.status_code == 422 and "store" in r.json()["detail"]


async def test_health_ready_metrics_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz", headers={})).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert "geo_pings_total" in metrics
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for p in (
        "/v1/pings",
        "/v1/cluster",
        "/v1/geofences",
        "/v1/geofences/import",
        "/v1/geofences/{fence_id}",
        "/v1/presence-events",
        "/v1/customers/{customer_id}/presence",
        "/v1/api-keys",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert p in paths, p
    body = paths["/v1/pings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "pings" in body["properties"]
