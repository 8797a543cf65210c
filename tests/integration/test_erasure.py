"""Export and erasure (issue 8): a customer created through every endpoint is exported whole,
then erased; a scan of every text and JSON column of every table finds none of their
identifiers, memory forgets them, and only anonymous counts remain."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import asyncpg
import httpx

from adapters.composition import Services
from tests.helpers import LAT0, LON0, ping
from tests.integration.test_beacons import _key, ibeacon, sighting, store_with_zone
from tests.integration.test_events_api import ev, purchase
from tests.integration.test_owntracks import _android, _send

T0 = time.time() - 3600.0
CID = "crm-4242"
PHONE = "+33612345678"
EMAIL = hashlib.sha256(b"zelda@example.com").hexdigest()
SECRETS = (CID, "phone-4242", "zed/pixel", PHONE, EMAIL, "Zelda", "evt-4242", "order-4242")
AT = "2026-01-01T10:00:00+00:00"


async def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: Any = r.json()
    return body if isinstance(body, dict) else {}


async def _everything(client: httpx.AsyncClient) -> None:
    """Every way data about CID gets in, and a bystander who must survive."""
    await store_with_zone(client, "s1")
    await _ok(await client.post("/v1/beacons", json=ibeacon(id="b1")), 201)
    await _ok(await client.post("/v1/nfc-tags", json={"id": "till", "geofence_id": "s1"}), 201)
    consents = {"location": {"status": "granted", "at": AT, "source": "app"}}
    await _ok(await client.put(f"/v1/customers/{CID}/consents", json=consents))
    profile = {"first_name": "Zelda", "age_band": "25-34", "home_postcode": "75011"}
    await _ok(await client.put(f"/v1/customers/{CID}", json={**profile, "consents": consents}))
    # the phone pings before it is linked (as device:phone-4242), then is linked
    pre = ping("phone-4242", LAT0, LON0, T0, device=True)
    await _ok(await client.post("/v1/pings?wait=true", json={"pings": [pre]}))
    ids = [
        {"type": "device", "value": "phone-4242"},
        {"type": "device", "value": "zed/pixel"},
        {"type": "phone", "value": PHONE},
        {"type": "email_hash", "value": EMAIL},
    ]
    await _ok(
        await client.post("/v1/identities/link", json={"customer_id": CID, "identifiers": ids})
    )
    rows = [ping("phone-4242", LAT0, LON0, T0 + 60 * i, device=True) for i in range(1, 8)]
    await _ok(await client.post("/v1/pings?wait=true", json={"pings": rows}))
    events = [
        ev(CID, "click", T0, event_id="evt-4242", url="https://shop.example/p/1"),
        purchase(CID, T0 + 1, "order-4242", 42.0),
        ev("bystander", "click", T0),
    ]
    await _ok(await client.post("/v1/events?wait=true", json={"events": events}))
    await _ok(
        await client.post(
            "/v1/beacon-sightings?wait=true", json={"sightings": [sighting(T0 + 500, who=CID)]}
        )
    )
    tap = {"device_id": "phone-4242", "tag_id": "till", "ts": T0 + 520}
    await _ok(await client.post("/v1/nfc-taps", json=tap), 201)
    key = await _key(client, "ingest")
    ot = {"X-Limit-U": "zed", "X-Limit-D": "pixel"}
    await _send(client, key, _android(LAT0, LON0, int(T0 + 600)), ot)
    trans = {"_type": "transition", "event": "enter", "desc": "Store", "lat": LAT0, "lon": LON0}
    trans.update({"acc": 10, "t": "c", "tid": "ze", "tst": int(T0 + 610), "rid": "r1"})
    await _send(client, key, trans, ot)
    beacon = {"_type": "beacon", "uuid": "F7826DA6-4FA2-4E98-8024-BC5B71E0893E", "major": 1}
    beacon.update({"minor": 7, "tst": int(T0 + 620), "acc": 1.2, "rssi": -61, "prox": 2})
    await _send(client, key, beacon, ot)
    await _ok(
        await client.post(
            "/v1/pings?wait=true", json={"pings": [ping("bystander", LAT0, LON0, T0)]}
        )
    )


async def _scan(pool: asyncpg.Pool, needles: tuple[str, ...]) -> list[str]:
    """Every (table.column, needle) where a text-like column of any table contains a needle."""
    async with pool.acquire() as conn:
        cols = await conn.fetch(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
            " AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
            " OR c.data_type = 'ARRAY')"
        )
        hits = []
        for c in cols:
            for needle in needles:
                found = await conn.fetchval(
                    f'SELECT count(*) FROM "{c["table_name"]}"'
                    f' WHERE strpos(lower("{c["column_name"]}"::text), lower($1)) > 0',
                    needle,
                )
                if found:
                    hits.append(f"{c['table_name']}.{c['column_name']}: {needle}")
    return hits


async def test_export_then_erase_every_trace(client: httpx.AsyncClient, services: Services) -> None:
    await _everything(client)
    before = await _scan(services.pool, SECRETS)
    tables = {h.split(".")[0] for h in before}
    # the customer really is everywhere before: the scan can see them
    for t in ("identities", "raw_fixes", "presence_events", "behaviour_events", "orders",
              "customer_profiles", "customer_consents", "consent_log", "nfc_taps",
              "owntracks_transitions", "owntracks_beacons"):  # fmt: skip
        assert t in tables, (t, before)
    # the cursor: in its log until a compaction folds it into the table
    assert {"customer_cursor_log", "customer_cursors"} & tables, before

    doc = await _ok(await client.get(f"/v1/customers/{CID}/export"))
    assert doc["customer_id"] == CID and "device:phone-4242" in doc["customer_ids"]
    assert {"identities", "raw_fixes", "presence_events", "orders", "nfc_taps"} <= set(
        doc["tables"]
    )
    assert doc["tables"]["customer_profiles"][0]["first_name"] == "Zelda"
    clicks = [e for e in doc["tables"]["behaviour_events"] if e["event_id"] == "evt-4242"]
    assert len(clicks) == 1 and isinstance(clicks[0]["properties"], dict)  # JSON, not a string

    out = await _ok(await client.delete(f"/v1/customers/{CID}"))
    assert out["rows"]["raw_fixes"] > 0 and out["rows"]["identities"] == 4

    assert await _scan(services.pool, SECRETS) == []
    # memory forgot them: presence, device links, profile
    rt = services.runtime
    for cid in (CID, "device:phone-4242", "device:zed/pixel"):
        assert rt.engine.cursor(cid) is None and not rt.engine.inside(cid)
        assert services.profiles.profile(cid) is None
        assert cid not in services.profiles.state.consents
    assert "phone-4242" not in rt.device_links and "zed/pixel" not in rt.device_links
    # the bystander is untouched
    assert rt.engine.cursor("bystander") is not None
    assert services.profiles.profile("bystander") is not None
    # anonymous counts remain
    async with services.pool.acquire() as conn:
        counts = {
            r["table_name"]: r["rows"] for r in await conn.fetch("SELECT * FROM erasure_counts")
        }
    assert counts["_customers"] == 1 and counts["raw_fixes"] == out["rows"]["raw_fixes"]
    # gone: export and a second erasure find nothing
    assert (await client.get(f"/v1/customers/{CID}/export")).status_code == 404
    assert (await client.delete(f"/v1/customers/{CID}")).status_code == 404
    # a device that pings again afterwards is a new, unlinked customer
    r = await client.post(
        "/v1/pings?wait=true",
        json={"pings": [ping("phone-4242", LAT0, LON0, T0 + 900, device=True)]},
    )
    assert r.json()["events"][0]["customer_id"] == "device:phone-4242"


async def test_export_and_erasure_are_admin_only(client: httpx.AsyncClient) -> None:
    for role in ("ingest", "gateway"):
        h = {"Authorization": f"Bearer {await _key(client, role)}"}
        assert (await client.get("/v1/customers/x/export", headers=h)).status_code == 403
        assert (await client.delete("/v1/customers/x", headers=h)).status_code == 403
    h = {"Authorization": f"Bearer {await _key(client, 'staff', ['s1'])}"}
    assert (await client.delete("/v1/customers/x", headers=h)).status_code == 403


async def test_erasing_a_linked_device_spares_its_customer(
    client: httpx.AsyncClient, services: Services
) -> None:
    """`device:phone-1` once pinged, then phone-1 was linked to crm-1: the device's rows are
    crm-1's now, and erasing the old `device:` id must not take crm-1's data with it."""
    await _ok(
        await client.post(
            "/v1/pings?wait=true", json={"pings": [ping("phone-1", LAT0, LON0, T0, device=True)]}
        )
    )
    link = {"customer_id": "crm-1", "identifiers": [{"type": "device", "value": "phone-1"}]}
    await _ok(await client.post("/v1/identities/link", json=link))
    await _ok(
        await client.post(
            "/v1/pings?wait=true",
            json={"pings": [ping("phone-1", LAT0, LON0, T0 + 60, device=True)]},
        )
    )
    await client.delete("/v1/customers/device:phone-1")
    async with services.pool.acquire() as conn:
        kept = await conn.fetchval("SELECT count(*) FROM raw_fixes WHERE customer_id = 'crm-1'")
    assert kept >= 1
    assert services.runtime.device_links["phone-1"] == "crm-1"
