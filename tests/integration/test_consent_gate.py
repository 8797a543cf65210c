"""The location consent gate (issue 8): without `location` consent, pings, beacon sightings and
NFC taps are neither processed nor stored, counted per reason and reported per row."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from adapters.composition import Services
from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, ping, square_feature
from tests.integration.test_beacons import ibeacon, sighting, store_with_zone

T0 = time.time() - 1800.0
AT = "2026-01-01T10:00:00+00:00"


@pytest.fixture
async def gated(clean_pool: asyncpg.Pool, settings_factory: Any) -> AsyncIterator[Services]:
    """Services with the legal default: prior consent required."""
    from adapters.composition import build_services

    svc = await build_services(settings_factory(require_location_consent=True), background=False)
    yield svc
    await svc.close()


@pytest.fixture
async def api(gated: Services) -> AsyncIterator[httpx.AsyncClient]:
    from adapters.api.app import create_app

    transport = httpx.ASGITransport(app=create_app(services=gated))
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=auth) as c:
        yield c


async def consent(api: httpx.AsyncClient, cid: str, status: str) -> httpx.Response:
    body = {"location": {"status": status, "at": AT, "source": "app"}}
    return await api.put(f"/v1/customers/{cid}/consents", json=body)


def dropped(signal: str, reason: str) -> float:
    labels = {"signal": signal, "reason": reason}
    return REGISTRY.get_sample_value("geo_location_dropped_total", labels) or 0.0


async def rows(pool: asyncpg.Pool, table: str) -> int:
    async with pool.acquire() as conn:
        n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
    return n


def test_the_legal_default_is_prior_consent() -> None:
    from adapters.settings import Settings

    assert Settings().require_location_consent is True


async def test_pings_without_consent_are_neither_processed_nor_stored(
    api: httpx.AsyncClient, gated: Services
) -> None:
    assert (await api.post("/v1/geofences", json=square_feature("shop"))).status_code == 201
    assert (await consent(api, "yes", "granted")).status_code == 200
    assert (await consent(api, "no", "revoked")).status_code == 200
    before = dropped("ping", "no_location_consent"), dropped("ping", "location_consent_refused")
    body = {
        "pings": [
            ping("yes", LAT0, LON0, T0),
            ping("unknown", LAT0, LON0, T0),
            ping("no", LAT0, LON0, T0),
            ping("phone-9", LAT0, LON0, T0, device=True),  # unlinked device: no statement
            {"lat": 99, "lon": 0, "ts": T0, "customer_id": "bad"},
        ]
    }
    r = await api.post("/v1/pings?wait=true", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1
    assert [e["customer_id"] for e in out["events"]] == ["yes"]
    assert out["ignored"] == [
        {"index": 1, "reason": "no_location_consent"},
        {"index": 2, "reason": "location_consent_refused"},
        {"index": 3, "reason": "no_location_consent"},
    ]
    assert [x["index"] for x in out["rejected"]] == [4]
    async with gated.pool.acquire() as conn:
        stored = await conn.fetch("SELECT DISTINCT customer_id FROM raw_fixes")
        cursors = await conn.fetch(
            "SELECT customer_id FROM customer_cursors"
            " UNION SELECT customer_id FROM customer_cursor_log"
        )
    assert {r["customer_id"] for r in stored} == {"yes"}
    assert {r["customer_id"] for r in cursors} == {"yes"}
    assert gated.runtime.engine.cursor("unknown") is None
    after = dropped("ping", "no_location_consent"), dropped("ping", "location_consent_refused")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    # the app's own opt-in, recorded for the unlinked device, opens the gate at once
    assert (await consent(api, "device:phone-9", "granted")).status_code == 200
    r = await api.post(
        "/v1/pings?wait=true", json={"pings": [ping("phone-9", LAT0, LON0, T0 + 5, device=True)]}
    )
    assert r.json()["accepted"] == 1 and r.json()["events"][0]["type"] == "enter"
    # and a revocation closes it at once
    assert (await consent(api, "yes", "revoked")).status_code == 200
    r = await api.post("/v1/pings?wait=true", json={"pings": [ping("yes", LAT0, LON0, T0 + 9)]})
    assert r.json()["accepted"] == 0
    assert r.json()["ignored"] == [{"index": 0, "reason": "location_consent_refused"}]


async def test_sightings_and_taps_without_consent(api: httpx.AsyncClient, gated: Services) -> None:
    await store_with_zone(api, "s1")
    assert (await api.post("/v1/beacons", json=ibeacon(id="b1"))).status_code == 201
    assert (
        await api.post("/v1/nfc-tags", json={"id": "till", "geofence_id": "s1"})
    ).status_code == 201
    assert (await consent(api, "alice", "granted")).status_code == 200
    before = dropped("beacon", "no_location_consent")
    rows_in = [sighting(T0, who="alice"), sighting(T0, who="bob")]
    r = await api.post("/v1/beacon-sightings?wait=true", json={"sightings": rows_in})
    assert r.status_code == 200, r.text
    assert {e["customer_id"] for e in r.json()["events"]} == {"alice"}
    assert r.json()["ignored"] == [{"index": 1, "reason": "no_location_consent"}]
    assert dropped("beacon", "no_location_consent") - before == 1
    assert gated.runtime.engine.cursor("bob") is None and not gated.runtime.engine.inside("bob")

    before = dropped("nfc", "no_location_consent")
    r = await api.post("/v1/nfc-taps", json={"customer_id": "bob", "tag_id": "till", "ts": T0})
    assert r.status_code == 201, r.text
    assert (r.json()["id"], r.json()["flag"], r.json()["events"]) == (0, "no_location_consent", [])
    assert await rows(gated.pool, "nfc_taps") == 0
    assert dropped("nfc", "no_location_consent") - before == 1
    # a tap on an unknown tag is still refused as such: consent is checked on genuine taps
    r = await api.post("/v1/nfc-taps", json={"customer_id": "bob", "tag_id": "nope", "ts": T0})
    assert r.status_code == 404
    r = await api.post("/v1/nfc-taps", json={"customer_id": "alice", "tag_id": "till", "ts": T0})
    assert r.status_code == 201 and r.json()["id"] > 0
    assert await rows(gated.pool, "nfc_taps") == 1


async def test_consents_api(api: httpx.AsyncClient, gated: Services) -> None:
    body = {
        "location": {"status": "granted", "at": "2026-01-01T10:00:00+01:00", "source": "app"},
        "sms": {"status": "denied", "at": AT, "source": "web"},
    }
    r = await api.put("/v1/customers/c1/consents", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["consents"]
    assert out["location"]["status"] == "granted" and out["sms"]["source"] == "web"
    # an older statement does not override a newer one; every statement is logged
    old = {"location": {"status": "revoked", "at": "2025-01-01T00:00:00Z", "source": "crm"}}
    r = await api.put("/v1/customers/c1/consents", json=old)
    assert r.json()["consents"]["location"]["status"] == "granted"
    assert await rows(gated.pool, "consent_log") == 3
    # the profile's other attributes are untouched (this is not PUT /v1/customers/{id})
    assert (await api.put("/v1/customers/c1", json={"age_band": "25-34"})).status_code == 200
    await api.put(
        "/v1/customers/c1/consents", json={"push": {"status": "granted", "at": AT, "source": "app"}}
    )
    profile = (await api.get("/v1/customers/c1/profile")).json()
    assert profile["attributes"]["age_band"] == "25-34"
    assert set(profile["consents"]) == {"location", "sms", "push"}
    bad = {"location": {"status": "maybe", "at": AT, "source": "app"}}
    assert (await api.put("/v1/customers/c1/consents", json=bad)).status_code == 422
    bad = {"tracking": {"status": "granted", "at": AT, "source": "app"}}
    assert (await api.put("/v1/customers/c1/consents", json=bad)).status_code == 422


async def test_mobile_clients_without_consent_store_nothing(
    api: httpx.AsyncClient, gated: Services
) -> None:
    """OwnTracks transitions and beacons are location data too; OsmAnd says why per row."""
    basic = httpx.BasicAuth("u", ADMIN_KEY)
    hdrs = {"X-Limit-U": "u", "X-Limit-D": "d"}
    transition = {"_type": "transition", "event": "enter", "desc": "Shop", "t": "c", "acc": 10}
    transition.update(lat=LAT0, lon=LON0, tst=int(T0), wtst=int(T0) - 9)
    location = {"_type": "location", "lat": LAT0, "lon": LON0, "acc": 10, "tst": int(T0)}
    for msg in (transition, location):
        r = await api.post("/v1/owntracks", json=msg, headers=hdrs, auth=basic)
        assert (r.status_code, r.json()) == (200, [])
    assert await rows(gated.pool, "owntracks_transitions") == 0
    assert await rows(gated.pool, "raw_fixes") == 0

    params = {"id": "phone-9", "lat": LAT0, "lon": LON0, "timestamp": int(T0)}
    r = await api.get("/v1/osmand", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == [{"index": 0, "reason": "no_location_consent"}]
    assert await rows(gated.pool, "raw_fixes") == 0
