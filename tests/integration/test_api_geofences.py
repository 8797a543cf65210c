"""Geofence CRUD and import over HTTP: GeoJSON round trip, reasons, all-or-nothing import."""

from __future__ import annotations

import time

import httpx

from tests.helpers import LAT0, LON0, circle_feature, ping, square_feature


async def test_create_read_list_replace_delete(client: httpx.AsyncClient) -> None:
    feat = square_feature("s1-store", timezone="Europe/Paris", metadata={"brand": "A"})
    r = await client.post("/v1/geofences", json=feat)
    assert r.status_code == 201, r.text
    got = (await client.get("/v1/geofences/s1-store")).json()
    assert got["id"] == "s1-store" and got["properties"]["kind"] == "store"
    assert got["properties"]["timezone"] == "Europe/Paris"
    assert got["geometry"]["type"] == "Polygon"

    r = await client.post("/v1/geofences", json=feat)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "id"

    await client.post(
        "/v1/geofences",
        json=circle_feature("comp", LAT0, LON0 + 0.01, 80, kind="competitor", store_id=None),
    )
    fc = (await client.get("/v1/geofences", params={"kind": "competitor"})).json()
    assert fc["type"] == "FeatureCollection"
    assert [f["id"] for f in fc["features"]] == ["comp"]

    bigger = square_feature("s1-store", half_side_m=80, name="Store, bigger")
    r = await client.put("/v1/geofences/s1-store", json=bigger)
    assert r.status_code == 200
    assert (await client.get("/v1/geofences/s1-store")).json()["properties"][
        "name"
    ] == "Store, bigger"

    assert (await client.delete("/v1/geofences/s1-store")).status_code == 204
    assert (await client.get("/v1/geofences/s1-store")).status_code == 404
    assert (await client.delete("/v1/geofences/s1-store")).status_code == 404


async def test_invalid_geometry_is_refused_with_field_and_reason(client: httpx.AsyncClient) -> None:
    bowtie = square_feature("bow")
    ring = bowtie["geometry"]["coordinates"][0]
    ring[1], ring[2] = ring[2], ring[1]  # crossing edges
    r = await client.post("/v1/geofences", json=bowtie)
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["field"].startswith("geometry") and "intersect" in err["reason"].lower()

    unclosed = square_feature("open")
    unclosed["geometry"]["coordinates"][0].pop()
    r = await client.post("/v1/geofences", json=unclosed)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("geometry")

    r = await client.post("/v1/geofences", json=circle_feature("c0", LAT0, LON0, 0))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.radius_m"

    bad_kind = square_feature("k", kind="mall")
    r = await client.post("/v1/geofences", json=bad_kind)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "properties.kind"

    assert (await client.get("/v1/geofences")).json()["features"] == []


async def test_import_is_all_or_nothing_and_names_every_bad_feature(
    client: httpx.AsyncClient,
) -> None:
    good = [square_feature(f"g{i}", lat=LAT0 + i * 0.002) for i in range(3)]
    bad = square_feature("bad")
    bad["geometry"]["coordinates"][0][0] = [200.0, 10.0]
    dup = square_feature("g0")
    fc = {"type": "FeatureCollection", "features": [*good, bad, dup]}
    r = await client.post("/v1/geofences/import", json=fc)
    assert r.status_code == 422
    errs = r.json()["errors"]
    assert [(e["index"], e["field"].split(".")[0]) for e in errs] == [
        (3, "features[3]"),
        (4, "features[4]"),
    ]
    assert (await client.get("/v1/geofences")).json()["features"] == []

    r = await client.post(
        "/v1/geofences/import", json={"type": "FeatureCollection", "features": good}
    )
    assert r.status_code == 200 and r.json()["imported"] == 3
    assert len((await client.get("/v1/geofences")).json()["features"]) == 3


async def test_index_is_swapped_when_fences_change(client: httpx.AsyncClient) -> None:
    t0 = time.time() - 600
    r = await client.post("/v1/pings?wait=true", json={"pings": [ping("gus", LAT0, LON0, t0)]})
    assert r.json()["events"] == []
    await client.post("/v1/geofences", json=square_feature("late-fence"))
    r = await client.post("/v1/pings?wait=true", json={"pings": [ping("gus", LAT0, LON0, t0 + 5)]})
    assert [e["type"] for e in r.json()["events"]] == ["enter"]
    await client.delete("/v1/geofences/late-fence")
    presence = (await client.get("/v1/customers/gus/presence")).json()
    assert presence["inside"] == []


async def test_a_form_body_is_told_to_send_json(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/geofences",
        content=b"type=Feature",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["errors"][0]["reason"]
