"""POST /v1/pings end to end on real PostgreSQL: presence events, bad rows, flags."""

from __future__ import annotations

import time

import httpx

from tests.helpers import LAT0, LON0, offset, ping, square_feature

T0 = time.time() - 3600.0  # an hour ago: inside the accepted window


async def _fence(client: httpx.AsyncClient, fence_id: str = "store-1", **kw: object) -> None:
    r = await client.post("/v1/geofences", json=square_feature(fence_id, **kw))  # type: ignore[arg-type]
    assert r.status_code == 201, r.text


async def test_walk_into_a_store_dwell_and_leave(client: httpx.AsyncClient) -> None:
    await _fence(client)
    far = offset(LAT0, LON0, 400, 0)
    pings = [
        ping("alice", *far, T0),
        ping("alice", LAT0, LON0, T0 + 60),  # inside: enter
        ping("alice", LAT0, LON0, T0 + 400),  # 340 s later: dwell (300 s) is due
        ping("alice", *far, T0 + 500),  # far outside: exit
    ]
    r = await client.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 4 and body["rejected"] == []
    types = [(e["type"], e["geofence_id"], e["customer_id"]) for e in body["events"]]
    assert types == [
        ("enter", "store-1", "alice"),
        ("dwell", "store-1", "alice"),
        ("exit", "store-1", "alice"),
    ]
    page = (await client.get("/v1/presence-events", params={"customer_id": "alice"})).json()
    assert [e["type"] for e in page["events"]] == ["enter", "dwell", "exit"]
    assert page["events"][0]["id"] == body["events"][0]["id"]


async def test_bad_rows_are_reported_and_good_rows_still_go_through(
    client: httpx.AsyncClient,
) -> None:
    await _fence(client)
    pings = [
        {"customer_id": "bob", "lat": 123.0, "lon": LON0, "ts": T0},
        {"customer_id": "bob", "lat": LAT0, "lon": "east", "ts": T0},
        {"lat": LAT0, "lon": LON0, "ts": T0},
        {"customer_id": "bob", "lat": LAT0, "lon": LON0, "ts": "yesterday"},
        {"customer_id": "bob", "lat": LAT0, "lon": LON0, "ts": (T0 + 3600 * 24) * 1000},
        {"customer_id": "bob", "lat": LAT0, "lon": LON0, "ts": time.time() + 3600},
        {"customer_id": "bob", "lat": LAT0, "lon": LON0, "ts": "2026-01-01T10:00:00"},
        {"device_id": "nul\u0000byte", "lat": LAT0, "lon": LON0, "ts": T0},
        ping("bob", LAT0, LON0, T0 + 10),
    ]
    r = await client.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1
    rejected = {e["index"]: (e["field"], e["reason"]) for e in body["rejected"]}
    assert rejected[0][0] == "lat" and "90" in rejected[0][1]
    assert rejected[1][0] == "lon"
    assert rejected[2][0] == "device_id"
    assert rejected[3][0] == "ts" and "ISO 8601" in rejected[3][1]
    assert rejected[4][0] == "ts" and "milliseconds" in rejected[4][1]
    assert rejected[5][0] == "ts" and "future" in rejected[5][1]
    assert rejected[6][0] == "ts" and "offset" in rejected[6][1]
    assert rejected[7][0] == "device_id"  # NUL: PostgreSQL text cannot hold it
    assert [e["type"] for e in body["events"]] == ["enter"]


async def test_whole_batch_errors_name_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/pings?wait=true", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    r = await client.post("/v1/pings?wait=true", json={"fixes": []})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "pings"
    r = await client.post("/v1/pings?wait=true", json={"pings": [ping("x", LAT0, LON0, T0)] * 5001})
    assert r.status_code == 413
    err = r.json()["errors"][0]
    assert err["field"] == "pings" and "5000" in err["reason"]


async def test_duplicates_late_and_mock_fixes_never_flap(client: httpx.AsyncClient) -> None:
    await _fence(client)
    inside = ping("carol", LAT0, LON0, T0 + 100)
    r = await client.post("/v1/pings?wait=true", json={"pings": [inside]})
    assert [e["type"] for e in r.json()["events"]] == ["enter"]
    far = offset(LAT0, LON0, 500, 0)
    again = [
        inside,  # duplicate upload
        ping("carol", *far, T0 + 50),  # late: older than the fix applied
        ping("carol", *far, T0 + 150, mock=True),  # mocked location
    ]
    r = await client.post("/v1/pings?wait=true", json={"pings": again})
    body = r.json()
    assert body["events"] == []
    assert sorted(i["reason"] for i in body["ignored"]) == ["duplicate", "late", "mock"]
    presence = (await client.get("/v1/customers/carol/presence")).json()
    assert [f["geofence_id"] for f in presence["inside"]] == ["store-1"]


async def test_unlinked_device_is_its_own_customer(client: httpx.AsyncClient) -> None:
    await _fence(client)
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("phone-42", LAT0, LON0, T0, device=True)]}
    )
    ev = r.json()["events"]
    assert [(e["type"], e["customer_id"]) for e in ev] == [("enter", "device:phone-42")]


async def test_imprecise_fix_never_enters(client: httpx.AsyncClient) -> None:
    await _fence(client, half_side_m=50.0)
    r = await client.post(
        "/v1/pings?wait=true", json={"pings": [ping("dan", LAT0, LON0, T0, acc=900.0)]}
    )
    body = r.json()
    assert body["events"] == []
    assert body["ignored"] == [{"index": 0, "reason": "low_accuracy"}]


async def test_sweep_fires_dwell_without_a_new_ping(client: httpx.AsyncClient, services) -> None:  # type: ignore[no-untyped-def]
    await _fence(client)
    await client.post("/v1/pings?wait=true", json={"pings": [ping("erin", LAT0, LON0, T0)]})
    grace = services.settings.sweep_grace_s  # fixes still in flight may cancel what is due
    assert await services.runtime.sweep(now=T0 + 301 + grace - 2) == []
    fired = await services.runtime.sweep(now=T0 + 301 + grace)
    assert [(e.type.value, e.customer_id) for _, e in fired] == [("dwell", "erin")]
    assert [e.ts for _, e in fired] == [T0 + 300]  # dated when due, not when swept
    assert await services.runtime.sweep(now=T0 + 302 + grace) == []
    page = (await client.get("/v1/presence-events", params={"type": "dwell"})).json()
    assert len(page["events"]) == 1


async def test_presence_events_paginate_with_a_cursor(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await _fence(client, f"f{i}", lat=LAT0 + i * 0.01)
    rows = [ping("fay", LAT0 + i * 0.01, LON0, T0 + i * 1000) for i in range(5)]
    await client.post("/v1/pings?wait=true", json={"pings": rows})
    seen, cursor = [], None
    while True:
        params = {"customer_id": "fay", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/presence-events", params=params)).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 5
    r = await client.get("/v1/presence-events", params={"cursor": "garbage!"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
    r = await client.get("/v1/presence-events", params={"geofence_id": "nope"})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "geofence_id"
