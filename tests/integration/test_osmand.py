"""GET|POST /v1/osmand end to end on real PostgreSQL, with requests shaped as Traccar's own test
suite (OsmAndProtocolDecoderTest.java) and Traccar Client 9's JSON template: every time form and
unit, linked devices or an ingest key, 401 for an unknown device, 400 naming a bad field."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.composition import Services
from tests.helpers import LAT0, LON0, offset, square_feature

T0 = int(time.time()) - 3600
TABLES = ("raw_fixes", "customer_cursors", "customer_cursor_log", "presence_events")
NO_KEY = {"Authorization": ""}  # the `client` fixture is admin by default: these send none


async def _key(client: httpx.AsyncClient, role: str = "ingest") -> str:
    body = {"name": f"{role} tracker", "role": role, "store_ids": ["s1"] if role == "staff" else []}
    r = await client.post("/v1/api-keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def _link(client: httpx.AsyncClient, device: str, customer: str) -> None:
    body = {"customer_id": customer, "identifiers": [{"type": "device", "value": device}]}
    r = await client.post("/v1/identities/link", json=body)
    assert r.status_code == 200, r.text


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def _events(client: httpx.AsyncClient, customer: str) -> list[str]:
    page = await client.get("/v1/presence-events", params={"customer_id": customer})
    return [e["type"] for e in page.json()["events"]]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _traccar_client_json(device: str, lat: float, lon: float, t: float) -> dict[str, Any]:
    """Traccar Client 9's location template (traccar/traccar-client lib/preferences.dart) as
    flutter_background_geolocation posts it, `device_id` beside `location`."""
    return {
        "location": {
            "timestamp": _iso(t),
            "coords": {
                "latitude": lat,
                "longitude": lon,
                "accuracy": 5,
                "speed": 1.4,
                "heading": -1,
                "altitude": 35.7,
            },
            "is_moving": True,
            "odometer": 1520,
            "event": "motionchange",
            "battery": {"level": 0.79, "is_charging": False},
            "activity": {"type": "walking"},
            "extras": {},
            "_": f"&id={device}&lat={lat}&lon={lon}&timestamp={_iso(t)}&",
        },
        "device_id": device,
    }


@pytest.fixture
async def store(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/geofences", json=square_feature("store-1"))
    assert r.status_code == 201, r.text


async def test_linked_device_walk_with_every_time_form(
    client: httpx.AsyncClient, store: None, services: Services
) -> None:
    await _link(client, "902064", "crm-1")
    far = offset(LAT0, LON0, 400, 0)
    inside = datetime.fromtimestamp(T0 + 400, UTC).strftime("%Y-%m-%d+%H:%M:%S")  # + is a space
    urls = [
        f"/v1/osmand?id=902064&lat={far[0]}&lon={far[1]}&timestamp={T0}&hdop=6.0&speed=0.0",
        f"/v1/osmand?id=902064&lat={LAT0}&lon={LON0}&timestamp={(T0 + 60) * 1000}&speed=10",
        f"/v1/osmand?deviceid=902064&location={LAT0},{LON0}&timestamp={inside}&bearing=7.2",
        f"/v1/osmand?id=902064&lat={far[0]}&lon={far[1]}&timestamp={_iso(T0 + 500)}&batt=87",
    ]
    for url in urls:
        r = await client.get(url, headers=NO_KEY)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
    assert await _events(client, "crm-1") == ["enter", "dwell", "exit"]
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM raw_fixes WHERE ts = to_timestamp($1)", T0 + 60)
    assert row["speed_mps"] == pytest.approx(10 * 1852 / 3600)  # knots
    assert row["accuracy_m"] is None and row["customer_id"] == "crm-1"


async def test_form_post_with_a_key_and_the_trailing_slash(
    client: httpx.AsyncClient, store: None
) -> None:
    key = await _key(client)
    form = {"id": "353861053849681", "lat": str(LAT0), "lon": str(LON0), "timestamp": str(T0)}
    form.update({"altitude": "384.7", "speed": "0.0", "accuracy": "0", "ignition": "true"})
    r = await client.post("/v1/osmand/", data=form, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert [(e["type"], e["customer_id"]) for e in events] == [("enter", "device:353861053849681")]


async def test_traccar_client_json(
    client: httpx.AsyncClient, store: None, services: Services
) -> None:
    key = await _key(client)
    auth = {"Authorization": f"Bearer {key}"}
    far = offset(LAT0, LON0, 400, 0)
    for lat, lon, t in ((*far, T0), (LAT0, LON0, T0 + 60.123), (LAT0, LON0, T0 + 60.123)):
        body = _traccar_client_json("48241179", lat, lon, t)
        r = await client.post("/v1/osmand", json=body, headers=auth)
        assert r.status_code == 200, r.text
    assert r.json()["ignored"] == [{"index": 0, "reason": "duplicate"}]  # a resend
    assert await _events(client, "device:48241179") == ["enter"]
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM raw_fixes ORDER BY ts DESC LIMIT 1")
    assert (row["speed_mps"], row["heading"], row["accuracy_m"]) == (1.4, None, 5.0)  # m/s


async def test_unknown_device_without_a_key_is_401_and_stores_nothing(
    client: httpx.AsyncClient, store: None, services: Services
) -> None:
    r = await client.get(f"/v1/osmand?id=123456&lat={LAT0}&lon={LON0}", headers=NO_KEY)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["errors"][0]["field"] == "id"
    body = _traccar_client_json("8737767034", LAT0, LON0, T0)
    r = await client.post("/v1/osmand", json=body, headers=NO_KEY)
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "device_id"
    wrong = {"Authorization": "Bearer ge_not_a_key"}
    assert (await client.post("/v1/osmand", json=body, headers=wrong)).status_code == 401
    staff = {"Authorization": f"Bearer {await _key(client, 'staff')}"}
    assert (await client.post("/v1/osmand", json=body, headers=staff)).status_code == 403
    assert set((await _counts(services.pool)).values()) == {0}


@pytest.mark.parametrize(
    ("request_args", "field"),
    [
        ({"url": "/v1/osmand?timestamp=1377177267&lat=60.0&lon=30.0"}, "id"),  # Traccar: null
        ({"url": "/v1/osmand?id=1&lat=abc&lon=2"}, "lat"),
        ({"url": "/v1/osmand?id=1&lat=123&lon=2"}, "lat"),
        ({"url": "/v1/osmand?id=1&lat=1&lon=2&timestamp=yesterday"}, "timestamp"),
        ({"url": "/v1/osmand?id=1&lat=1&lon=2&speed=fast"}, "speed"),
        ({"url": "/v1/osmand?id=1&lat=1&lon=2&wifi=00-14-22-01-23-45"}, "wifi"),
        ({"url": "/v1/osmand", "json": {"location": {"timestamp": "x"}}}, "device_id"),
        ({"url": "/v1/osmand", "json": {"device_id": "1", "location": {"coords": {}}}}, None),
        (
            {"url": "/v1/osmand", "content": b"{", "headers": {"content-type": "application/json"}},
            "body",
        ),
    ],
)
async def test_bad_requests_are_400_naming_the_field(
    client: httpx.AsyncClient, services: Services, request_args: dict[str, Any], field: str | None
) -> None:
    await _link(client, "1", "crm-1")
    method = "POST" if "json" in request_args or "content" in request_args else "GET"
    args = dict(request_args)
    args["headers"] = {**NO_KEY, **args.get("headers", {})}
    r = await client.request(method, **args)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["field"] == (field or "location.timestamp"), err
    assert set((await _counts(services.pool)).values()) == {0}


async def test_unusable_fixes_are_acknowledged_and_listed(
    client: httpx.AsyncClient, services: Services
) -> None:
    await _link(client, "123456", "crm-1")
    cases = {  # Traccar's own test requests: cell/wifi only, and a fix from 2013
        "id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90"
        "&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70": "lat",
        "id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0": "timestamp",
        f"id=123456&lat={LAT0}&lon={LON0}&timestamp={T0}&valid=false": "valid",
        f"id=123456&lat={LAT0}&lon={LON0}&timestamp={T0 + 86400}": "timestamp",
    }
    for query, field in cases.items():
        r = await client.get(f"/v1/osmand?{query}", headers=NO_KEY)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["accepted"] == 0 and [e["field"] for e in body["rejected"]] == [field]
    assert set((await _counts(services.pool)).values()) == {0}


async def test_mock_fix_is_flagged_and_never_enters(client: httpx.AsyncClient, store: None) -> None:
    await _link(client, "861001000719969", "crm-3")
    url = f"/v1/osmand?id=861001000719969&lat={LAT0}&lon={LON0}&timestamp={T0}&mock=true"
    r = await client.get(url, headers=NO_KEY)
    assert r.status_code == 200 and r.json()["ignored"] == [{"index": 0, "reason": "mock"}]
    assert await _events(client, "crm-3") == []
