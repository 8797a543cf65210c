"""Issue 3, "done means": a simulated walk through a store with a beacon in one department and an
NFC tag at the till, through the real HTTP endpoints and the sweep, produces in order and once
each: store enter (GPS) -> department enter (beacon) -> dwells -> tap (recorded, no second store
enter) -> department exit (beacon no longer heard) -> store exit."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from adapters.codecs.nfc_sun import sdm_mac
from tests.helpers import LAT0, LON0, offset, ping
from tests.integration.test_beacons import UUID, store_with_zone

T0 = time.time() - 3600.0
PHONE = "phone-7"
WHO = f"device:{PHONE}"  # an unlinked device is its own customer
TAG_KEY, TAG_UID = os.urandom(16), bytes.fromhex("04A1B2C3D4E5F6")


def fix(t: float, north_m: float = 0.0, east_m: float = 0.0, acc: float = 12.0) -> dict[str, Any]:
    return ping(PHONE, *offset(LAT0, LON0, north_m, east_m), T0 + t, acc, device=True)


def heard(t: float, rssi: float = -63) -> dict[str, Any]:
    return {"device_id": PHONE, "uuid": UUID, "major": 1, "minor": 7, "rssi": rssi, "ts": T0 + t}


def sun_url(counter: int) -> str:
    mac = sdm_mac(TAG_KEY, TAG_UID, counter).hex().upper()
    return f"https://shop.example/t?uid={TAG_UID.hex().upper()}&ctr={counter:06X}&cmac={mac}"


def seen(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["type"], e["geofence_id"], e["source"]) for e in body["events"]]


async def test_walk_through_a_store(
    client: httpx.AsyncClient, services: Any, clean_pool: asyncpg.Pool
) -> None:
    await store_with_zone(client, "s1")  # store s1 (100 m), department s1-dept 30 m NE
    r = await client.post(
        "/v1/beacons",
        json={"id": "shoes", "uuid": UUID, "major": 1, "minor": 7, "geofence_id": "s1-dept"},
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/nfc-tags",
        json={
            "id": "till-1",
            "geofence_id": "s1",
            "uid": TAG_UID.hex(),
            "sun": {"file_read_key": TAG_KEY.hex()},
            "placement": "main till",
        },
    )
    assert r.status_code == 201, r.text
    grace = services.settings.sweep_grace_s

    async def pings(*rows: dict[str, Any]) -> dict[str, Any]:
        r = await client.post("/v1/pings?wait=true", json={"pings": list(rows)})
        assert r.status_code == 200 and r.json()["ignored"] == [], r.text
        return dict(r.json())

    async def sightings(*rows: dict[str, Any]) -> dict[str, Any]:
        r = await client.post("/v1/beacon-sightings?wait=true", json={"sightings": list(rows)})
        assert r.status_code == 200 and r.json()["ignored"] == [], r.text
        return dict(r.json())

    # walking up the street, then in through the door: GPS enters the store
    assert seen(await pings(fix(0, north_m=400), fix(60))) == [("enter", "s1", "gps")]
    # the shoe department's beacon is heard every 30 s from T0+120 (RSSI -63: ~1.6 m, near)
    assert seen(await sightings(*(heard(t) for t in range(120, 301, 30)))) == [
        ("enter", "s1-dept", "beacon")
    ]
    # an indoor fix in the store, well away from the department: no change for either
    assert seen(await pings(fix(310, acc=25.0))) == []
    assert seen(await sightings(*(heard(t) for t in range(330, 481, 30)))) == [
        ("dwell", "s1", "gps"),  # 300 s after the store enter, fired by the sighting at 360
        ("dwell", "s1-dept", "beacon"),  # 300 s after the department enter
    ]
    # to the till (out of the beacon's range), a fix on the way, then the tap: already in the
    # store, so the tap is recorded but makes no second store enter
    assert seen(await pings(fix(520, north_m=-20, acc=20.0))) == []
    r = await client.post(
        "/v1/nfc-taps",
        json={"device_id": PHONE, "tag_id": "till-1", "ts": T0 + 540, "sun": sun_url(1)},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["verified"], r.json()["counter"], r.json()["events"]) == (True, 1, [])
    # the same tap URL resent: a replay, refused, nothing stored
    r = await client.post(
        "/v1/nfc-taps",
        json={"device_id": PHONE, "tag_id": "till-1", "ts": T0 + 545, "sun": sun_url(1)},
    )
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "sun.ctr"
    inside = (await client.get(f"/v1/customers/{WHO}/presence")).json()["inside"]
    assert sorted(f["geofence_id"] for f in inside) == ["s1", "s1-dept"]
    # the beacon was last heard at T0+480: the department exits 90 s later, by the sweep
    assert await services.runtime.sweep(now=T0 + 569 + grace) == []
    swept = await services.runtime.sweep(now=T0 + 570 + grace)
    assert [(e.type.value, e.geofence_id, e.source, e.reason) for _, e in swept] == [
        ("exit", "s1-dept", "beacon", "not_heard")
    ]
    # out of the door and down the street: GPS says outside, but the tap holds the store for
    # nfc_hold_s (5 min) after it; then the exit is dated at the hold's end
    assert seen(await pings(fix(650, north_m=250), fix(700, north_m=400))) == []
    hold_end = 540 + services.settings.nfc_hold_s
    assert await services.runtime.sweep(now=T0 + hold_end - 1 + grace) == []
    swept = await services.runtime.sweep(now=T0 + hold_end + grace)
    assert [(e.type.value, e.geofence_id, e.source, e.reason) for _, e in swept] == [
        ("exit", "s1", "gps", "timeout")
    ]
    assert (await client.get(f"/v1/customers/{WHO}/presence")).json()["inside"] == []

    # the whole story, once each and in order
    page = (await client.get("/v1/presence-events", params={"customer_id": WHO})).json()
    story = [
        (e["type"], e["geofence_id"], e["source"], datetime.fromisoformat(e["ts"]).timestamp())
        for e in page["events"]
    ]
    expected = [
        ("enter", "s1", "gps", 60),
        ("enter", "s1-dept", "beacon", 120),
        ("dwell", "s1", "gps", 360),
        ("dwell", "s1-dept", "beacon", 420),
        ("exit", "s1-dept", "beacon", 570),
        ("exit", "s1", "gps", hold_end),
    ]
    assert [s[:3] for s in story] == [x[:3] for x in expected]
    for (*_, ts), (*_, offset_s) in zip(story, expected, strict=True):
        assert abs(ts - (T0 + offset_s)) < 1e-3  # dated when it happened, not when swept
    async with clean_pool.acquire() as conn:
        taps = await conn.fetch("SELECT tag_id, customer_id, counter, verified FROM nfc_taps")
    assert [tuple(t) for t in taps] == [("till-1", WHO, 1, True)]
