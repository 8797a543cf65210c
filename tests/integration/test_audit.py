"""The audit log (issue 8): every change by an admin or staff key — who, what, when, status —
never a body, a customer id masked; readable by admin only, paginated."""

from __future__ import annotations

import httpx

from adapters.composition import Services
from tests.helpers import square_feature
from tests.integration.test_beacons import _as, _key


async def test_changes_by_admin_and_staff_are_audited(
    client: httpx.AsyncClient, services: Services
) -> None:
    staff = _as(await _key(client, "staff", ["s1"]))
    ingest = _as(await _key(client, "ingest"))
    feature = square_feature("shop", store_id="s1", name="secret-name-in-body")
    assert (await client.post("/v1/geofences", json=feature)).status_code == 201
    r = await client.put("/v1/geofences/shop", headers=staff, json=feature)
    assert r.status_code == 200, r.text
    other = square_feature("theirs", store_id="s2")
    assert (await client.post("/v1/geofences", headers=staff, json=other)).status_code == 403
    # ingest changes are the data flow itself, not administration: not audited
    body = {"first_name": "Zelda"}
    assert (await client.put("/v1/customers/crm-1", headers=ingest, json=body)).status_code == 200
    # reads are not audited
    assert (await client.get("/v1/geofences/shop")).status_code == 200
    assert (await client.delete("/v1/customers/crm-1")).status_code == 200

    page = (await client.get("/v1/audit-log")).json()
    items = page["items"]
    rows = [(i["method"], i["path"], i["role"], i["status"]) for i in items]
    assert rows == [
        ("POST", "/v1/api-keys", "admin", 201),
        ("POST", "/v1/api-keys", "admin", 201),
        ("POST", "/v1/geofences", "admin", 201),
        ("PUT", "/v1/geofences/shop", "staff", 200),
        ("POST", "/v1/geofences", "staff", 403),
        ("DELETE", "/v1/customers/{customer_id}", "admin", 200),
    ]
    assert items[3]["route"] == "/v1/geofences/{fence_id}"
    assert items[0]["key_id"] == "bootstrap-admin" and items[3]["key_id"] != "bootstrap-admin"
    assert page["next_after_id"] is None
    async with services.pool.acquire() as conn:
        dump = str(await conn.fetch("SELECT * FROM audit_log"))
    assert "secret-name-in-body" not in dump and "crm-1" not in dump and "ge_" not in dump

    # pagination
    first = (await client.get("/v1/audit-log", params={"limit": 4})).json()
    assert len(first["items"]) == 4 and first["next_after_id"] == first["items"][-1]["id"]
    rest = await client.get("/v1/audit-log", params={"after_id": first["next_after_id"]})
    assert [i["id"] for i in first["items"] + rest.json()["items"]] == [i["id"] for i in items]
    # readable by admin only
    assert (await client.get("/v1/audit-log", headers=staff)).status_code == 403
    assert (await client.get("/v1/audit-log", headers=ingest)).status_code == 403
