"""NFC tags and taps end to end on real PostgreSQL: the registry, plain taps, NTAG 424 DNA SUN
verification (AN12196 vectors), replays and bad MACs refused with nothing stored."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx

from adapters.codecs.nfc_sun import sdm_mac
from tests.helpers import LAT0, LON0, square_feature
from tests.integration.test_beacons import _as, _key, store_with_zone

T0 = time.time() - 3600.0
ZERO = "00" * 16
PLAIN_URL = "https://shop.example/t?uid=041E3C8A2D6B80&ctr=000006&cmac=4B00064004B0B3D3"
ENC_URL = "https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086"


async def _tag(client: httpx.AsyncClient, **kw: Any) -> httpx.Response:
    body = {"id": "till", "geofence_id": "s1", **kw}
    return await client.post("/v1/nfc-tags", json=body)


async def _stored(pool: asyncpg.Pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        taps = await conn.fetchval("SELECT count(*) FROM nfc_taps")
        events = await conn.fetchval("SELECT count(*) FROM presence_events")
    return taps, events


async def test_tag_registry(client: httpx.AsyncClient) -> None:
    await store_with_zone(client, "s1")
    await store_with_zone(client, "s2")
    r = await _tag(client, sun={"file_read_key": ZERO}, uid="041e3c8a2d6b80")
    assert r.status_code == 201, r.text
    tag = r.json()
    assert (tag["sun"], tag["decrypts_picc_data"], tag["store_id"]) == (True, False, "s1")
    assert "file_read_key" not in r.text and ZERO not in r.text  # secrets never shown
    assert (await _tag(client)).status_code == 409
    for kw, field in [
        ({"id": "x", "sun": {"file_read_key": "00"}}, "sun.file_read_key"),
        ({"id": "x", "uid": "0102"}, "uid"),
        ({"id": "x", "geofence_id": "nope"}, "geofence_id"),
    ]:
        r = await _tag(client, **kw)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    rival = square_feature("rival", LAT0 + 0.01, LON0, kind="competitor", store_id=None)
    assert (await client.post("/v1/geofences", json=rival)).status_code == 201
    assert (await _tag(client, id="x", geofence_id="rival")).status_code == 422
    assert (await _tag(client, id="dept-tag", geofence_id="s1-dept")).status_code == 201
    staff = _as(await _key(client, "staff", ["s2"]))
    assert (await _tag(client, id="y", geofence_id="s1")).status_code == 201
    r = await client.post("/v1/nfc-tags", headers=staff, json={"id": "z", "geofence_id": "s1"})
    assert r.status_code == 403
    assert (await client.get("/v1/nfc-tags/till", headers=staff)).status_code == 403
    assert (await client.delete("/v1/nfc-tags/till", headers=staff)).status_code == 403
    assert (await client.get("/v1/nfc-tags", headers=staff)).json()["tags"] == []
    listed = (await client.get("/v1/nfc-tags", params={"store_id": "s1"})).json()["tags"]
    assert [t["id"] for t in listed] == ["dept-tag", "till", "y"]
    assert (await client.delete("/v1/nfc-tags/y")).status_code == 204
    assert (await client.get("/v1/nfc-tags/y")).status_code == 404


async def test_a_plain_tap_enters_store_and_zone(client: httpx.AsyncClient) -> None:
    await store_with_zone(client)
    await _tag(client, id="dept-tag", geofence_id="s1-dept")
    r = await client.post(
        "/v1/nfc-taps", json={"device_id": "phone-1", "tag_id": "dept-tag", "ts": T0}
    )
    assert r.status_code == 201, r.text
    tap = r.json()
    assert (tap["customer_id"], tap["verified"], tap["counter"], tap["flag"]) == (
        "device:phone-1",
        False,
        None,
        None,
    )
    evs = [(e["type"], e["geofence_id"], e["source"]) for e in tap["events"]]
    assert evs == [("enter", "s1", "nfc"), ("enter", "s1-dept", "nfc")]
    # a second tap: already inside, recorded, no event; an older one: recorded as late
    r = await client.post(
        "/v1/nfc-taps", json={"customer_id": "device:phone-1", "tag_id": "dept-tag", "ts": T0 + 60}
    )
    assert r.status_code == 201 and r.json()["events"] == []
    r = await client.post(
        "/v1/nfc-taps", json={"device_id": "phone-1", "tag_id": "dept-tag", "ts": T0 - 60}
    )
    assert r.json()["flag"] == "late" and r.json()["events"] == []


async def test_sun_taps_verify_and_replays_or_bad_macs_store_nothing(
    client: httpx.AsyncClient, clean_pool: asyncpg.Pool
) -> None:
    await store_with_zone(client)
    await _tag(client, id="plain", sun={"file_read_key": ZERO}, uid="041E3C8A2D6B80")
    await _tag(client, id="enc", sun={"file_read_key": ZERO, "meta_read_key": ZERO})

    async def tap(tag: str, sun: Any, ts: float, who: str = "alice") -> httpx.Response:
        body = {"customer_id": who, "tag_id": tag, "ts": ts, "sun": sun}
        return await client.post("/v1/nfc-taps", json=body)

    r = await tap("plain", PLAIN_URL, T0)
    assert r.status_code == 201, r.text
    assert (r.json()["verified"], r.json()["counter"]) == (True, 6)
    assert [e["type"] for e in r.json()["events"]] == ["enter"]
    before = await _stored(clean_pool)
    refused = [
        (await tap("plain", PLAIN_URL, T0 + 10), 409, "sun.ctr"),  # the same URL again
        (await tap("plain", PLAIN_URL.replace("B3D3", "B3D4"), T0 + 10), 403, "sun.cmac"),
        (await tap("plain", None, T0 + 10), 422, "sun"),
        (await tap("plain", "uid=041E3C8A2D6B80&ctr=000007", T0 + 10), 422, "sun.cmac"),
        (await tap("nope", None, T0 + 10), 404, "tag_id"),
        (
            await tap("enc", "e=00112233445566778899AABBCCDDEEFF&c=94EED9EE65337086", T0),
            403,
            "sun.picc_data",
        ),
    ]
    for resp, status, field in refused:
        assert resp.status_code == status, resp.text
        assert resp.json()["errors"][0]["field"] == field, resp.text
    assert await _stored(clean_pool) == before  # refused taps store nothing
    # encrypted PICCData (AN12196's example, counter 61), given as an object this time
    sun = {"picc_data": "EF963FF7828658A599F3041510671E88", "cmac": "94EED9EE65337086"}
    r = await tap("enc", sun, T0 + 20, who="bob")
    assert r.status_code == 201 and (r.json()["verified"], r.json()["counter"]) == (True, 61)
    assert (await tap("enc", ENC_URL, T0 + 30, who="bob")).status_code == 409
    # a fresh counter from the same tag verifies again
    fresh = sdm_mac(bytes(16), bytes.fromhex("041E3C8A2D6B80"), 7).hex()
    r = await tap("plain", {"uid": "041E3C8A2D6B80", "ctr": "000007", "cmac": fresh}, T0 + 40)
    assert r.status_code == 201 and r.json()["counter"] == 7
    assert (await client.get("/v1/nfc-tags/plain")).json()["last_counter"] == 7
    metrics = (await client.get("/metrics")).text
    assert 'geo_nfc_taps_total{outcome="replay"}' in metrics


async def test_tap_input_errors(client: httpx.AsyncClient) -> None:
    await store_with_zone(client)
    await _tag(client)
    for body, field in [
        ({"tag_id": "till", "ts": T0}, "device_id"),
        ({"customer_id": "a", "tag_id": "till", "ts": "yesterday"}, "ts"),
        ({"customer_id": "a", "tag_id": "till", "ts": time.time() + 3600}, "ts"),
        ({"customer_id": "a", "ts": T0}, "tag_id"),
    ]:
        r = await client.post("/v1/nfc-taps", json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    staff = _as(await _key(client, "staff", ["s1"]))
    body = {"customer_id": "a", "tag_id": "till", "ts": T0}
    assert (await client.post("/v1/nfc-taps", headers=staff, json=body)).status_code == 403
