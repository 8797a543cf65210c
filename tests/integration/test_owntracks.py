"""POST /v1/owntracks end to end on real PostgreSQL, with the apps' own payloads (owntracks/android
test fixtures, the booklet's examples): presence events, transitions and beacons recorded once,
everything else acknowledged with 200 [] so the app stops resending, 401 only for auth."""

from __future__ import annotations

import base64
import time
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from adapters.composition import Services
from tests.helpers import LAT0, LON0, offset, square_feature

T0 = int(time.time()) - 3600  # OwnTracks tst is whole seconds
TABLES: tuple[str, ...] = ("raw_fixes", "customer_cursors", "customer_cursor_log")
TABLES += ("presence_events",)
TABLES += ("owntracks_transitions", "owntracks_beacons")


async def _key(client: httpx.AsyncClient, role: str = "ingest") -> str:
    body = {"name": f"{role} phone", "role": role, "store_ids": ["s1"] if role == "staff" else []}
    r = await client.post("/v1/api-keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _basic(key: str, user: str = "jane") -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


async def _send(
    client: httpx.AsyncClient,
    key: str,
    payload: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """As the Android app posts: Basic auth, X-Limit-U/-D, one JSON object."""
    sent = {"Authorization": _basic(key), "X-Limit-U": "jane", "X-Limit-D": "phone"}
    sent.update(headers or {})
    body = payload if isinstance(payload, bytes) else None
    r = await client.post(
        "/v1/owntracks",
        content=body,
        json=None if isinstance(payload, bytes) else payload,
        headers={"Content-Type": "application/json; charset=utf-8", **sent},
    )
    return r


def _android(lat: float, lon: float, tst: int, **extra: Any) -> dict[str, Any]:
    # the shape of owntracks/android's test fixture, at our coordinates and time
    base = {"_type": "location", "acc": 20, "alt": 0, "batt": 100, "bs": 0, "conn": "w"}
    base.update({"created_at": tst + 2, "lat": lat, "lon": lon, "tid": "ne", "tst": tst})
    base.update({"vac": 40, "vel": 4, "t": "p"})
    base.update(extra)
    return base


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _events(client: httpx.AsyncClient, customer: str) -> list[str]:
    page = await client.get("/v1/presence-events", params={"customer_id": customer})
    return [e["type"] for e in page.json()["events"]]


@pytest.fixture
async def key(client: httpx.AsyncClient) -> str:
    r = await client.post("/v1/geofences", json=square_feature("store-1"))
    assert r.status_code == 201, r.text
    return await _key(client)


async def test_android_walk_into_a_store_dwell_and_leave(
    client: httpx.AsyncClient, key: str
) -> None:
    far = offset(LAT0, LON0, 400, 0)
    for payload in (
        _android(*far, T0),
        _android(LAT0, LON0, T0 + 60),
        _android(LAT0, LON0, T0 + 400),
        _android(*far, T0 + 500),
    ):
        r = await _send(client, key, payload)
        assert r.status_code == 200 and r.json() == []
        assert r.headers["content-type"].startswith("application/json")
    assert await _events(client, "device:jane/phone") == ["enter", "dwell", "exit"]


async def test_ios_sender_from_topic_resolves_to_the_linked_customer(
    client: httpx.AsyncClient, key: str
) -> None:
    link = {"customer_id": "crm-7", "identifiers": [{"type": "device", "value": "jane/iphone"}]}
    assert (await client.post("/v1/identities/link", json=link)).status_code == 200
    ios = _android(LAT0, LON0, T0, topic="owntracks/jane/iphone", t="u", acc=8)
    r = await _send(client, key, ios, {"X-Limit-U": "", "X-Limit-D": ""})
    assert r.status_code == 200 and r.json() == []
    assert await _events(client, "crm-7") == ["enter"]


async def test_units_land_in_the_raw_fix(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    await _send(client, key, _android(LAT0, LON0, T0, vel=36, cog=90, acc=12))
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM raw_fixes")
    assert row["device_id"] == "jane/phone" and row["customer_id"] == "device:jane/phone"
    assert row["speed_mps"] == pytest.approx(10.0)  # 36 km/h
    assert (row["heading"], row["accuracy_m"], row["ts"].timestamp()) == (90.0, 12.0, T0)


async def test_a_resent_location_makes_no_second_event(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    before = _metric(
        "geo_client_messages_total", client="owntracks", type="location", outcome="duplicate"
    )
    for _ in range(3):  # the app resends until it sees a 2xx: here, three times
        assert (await _send(client, key, _android(LAT0, LON0, T0))).status_code == 200
    assert await _events(client, "device:jane/phone") == ["enter"]
    async with services.pool.acquire() as conn:
        flags = [
            r["flag"] for r in await conn.fetch("SELECT flag FROM raw_fixes ORDER BY received_at")
        ]
    assert flags == [None]  # the resends are the same message: the log held it already
    after = _metric(
        "geo_client_messages_total", client="owntracks", type="location", outcome="duplicate"
    )
    assert after - before == 2


async def test_transitions_are_recorded_once_and_never_make_presence(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    # booklet fields; the region sits on our store, yet only our own fences decide presence
    enter = {"_type": "transition", "acc": 14.9, "desc": "Store", "event": "enter", "lat": LAT0}
    enter.update({"lon": LON0, "t": "c", "tid": "ne", "tst": T0, "wtst": T0 - 86400, "rid": "r1"})
    leave = {**enter, "event": "leave", "tst": T0 + 600}
    for payload in (enter, enter, leave, leave):
        r = await _send(client, key, payload)
        assert r.status_code == 200 and r.json() == []
    async with services.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM owntracks_transitions ORDER BY ts")
    assert [(r["event"], r["region_id"], r["customer_id"]) for r in rows] == [
        ("enter", "r1", "device:jane/phone"),
        ("leave", "r1", "device:jane/phone"),
    ]
    assert rows[0]["waypoint_ts"].timestamp() == T0 - 86400
    counts = await _counts(services.pool)
    assert counts["presence_events"] == counts["raw_fixes"] == 0


async def test_ios_beacon_is_recorded_once(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    beacon = {"_type": "beacon", "uuid": "CA271EAE-5FA8-4E80-8F08-2A302A95A959", "major": 1}
    beacon.update({"minor": 7, "tst": T0, "acc": 1.2, "rssi": -61, "prox": 2, "desc": "till"})
    for _ in range(2):
        r = await _send(client, key, beacon, {"X-Limit-D": "iphone"})
        assert r.status_code == 200 and r.json() == []
    async with services.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT device_id, major, minor, rssi, proximity FROM owntracks_beacons"
        )
    assert [tuple(r) for r in rows] == [("jane/iphone", 1, 7, -61, 2)]


OTHERS: list[dict[str, Any]] = [
    {"_type": "lwt", "tst": T0},
    {"_type": "waypoint", "desc": "Home", "lat": LAT0, "lon": LON0, "rad": 50, "tst": T0},
    {"_type": "waypoints", "waypoints": [{"_type": "waypoint", "desc": "Work", "tst": T0}]},
    {"_type": "card", "name": "Jane", "tid": "ne"},
    {"_type": "cmd", "action": "reportLocation"},
    {"_type": "steps", "tst": T0, "steps": 1200, "from": T0 - 3600, "to": T0},
    {"_type": "encrypted", "data": "c2VjcmV0"},
    {"_type": "status", "android": {"wifistate": 1}},
    {"_type": "configuration", "mode": 3},
    {"_type": "something-new"},
]


async def test_other_types_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    before = _metric("geo_client_messages_ignored_total", client="owntracks", reason="type_lwt")
    for payload in OTHERS:
        r = await _send(client, key, payload, {"X-Limit-U": "", "X-Limit-D": ""})
        assert r.status_code == 200 and r.json() == [], payload
    assert set((await _counts(services.pool)).values()) == {0}
    after = _metric("geo_client_messages_ignored_total", client="owntracks", reason="type_lwt")
    assert after - before == 1


BAD: list[tuple[dict[str, Any] | bytes, dict[str, str], str]] = [
    (b'{"_type":"location","lat":', {}, "malformed_json"),
    (b"", {}, "malformed_json"),
    (b'[{"_type":"location"}]', {}, "not_an_object"),
    ({"_type": "location", "lon": LON0, "tst": T0}, {}, "bad_field"),  # no lat
    ({"_type": "location", "lat": 123.0, "lon": LON0, "tst": T0}, {}, "bad_field"),
    ({"_type": "location", "lat": "north", "lon": LON0, "tst": T0}, {}, "bad_field"),
    ({"_type": "location", "lat": LAT0, "lon": LON0, "tst": T0 + 86400}, {}, "out_of_window"),
    ({"_type": "location", "lat": LAT0, "lon": LON0, "tst": 1}, {}, "out_of_window"),
    (_android(LAT0, LON0, T0), {"X-Limit-U": "", "X-Limit-D": ""}, "missing_sender"),
    ({"_type": "transition", "event": "stay", "tst": T0}, {}, "bad_field"),
    ({"_type": "beacon", "uuid": "x", "major": -1, "minor": 0, "tst": T0}, {}, "bad_field"),
]


@pytest.mark.parametrize(("payload", "headers", "reason"), BAD)
async def test_bad_input_is_acknowledged_dropped_and_counted(
    client: httpx.AsyncClient,
    key: str,
    services: Services,
    payload: dict[str, Any] | bytes,
    headers: dict[str, str],
    reason: str,
) -> None:
    before = _metric("geo_client_messages_ignored_total", client="owntracks", reason=reason)
    r = await _send(client, key, payload, headers)
    assert r.status_code == 200 and r.json() == []  # the app would resend anything else forever
    assert set((await _counts(services.pool)).values()) == {0}
    after = _metric("geo_client_messages_ignored_total", client="owntracks", reason=reason)
    assert after - before == 1


async def test_auth_failures_are_the_only_non_2xx(
    client: httpx.AsyncClient, key: str, services: Services
) -> None:
    fix = _android(LAT0, LON0, T0)
    for auth in ("", _basic("ge_not_a_key"), "Basic !!!", _basic(""), "Digest abc"):
        r = await _send(client, key, fix, {"Authorization": auth})
        assert r.status_code == 401, auth
        assert r.headers["www-authenticate"].startswith("Basic")
    staff = await _key(client, "staff")
    assert (await _send(client, key, fix, {"Authorization": _basic(staff)})).status_code == 403
    assert set((await _counts(services.pool)).values()) == {0}
    bearer = {"Authorization": f"Bearer {key}"}  # curl and scripts may use the usual header
    assert (await _send(client, key, fix, bearer)).status_code == 200
    assert await _events(client, "device:jane/phone") == ["enter"]
