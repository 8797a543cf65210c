"""The console's backend reads: stores derived from the fences, a store's presence in aggregate
(inside now, today's events, per fence), and a fence's H3 cells; each as a staff key of another
store may not see it."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import h3
import httpx
from shapely.geometry import Polygon, shape

from tests.helpers import LAT0, LON0, offset, ping, square_feature

FAR = offset(LAT0, LON0, 600, 0)
LAT2, LON2 = offset(LAT0, LON0, 0, 2000)  # the other store, 2 km east


async def _setup(client: httpx.AsyncClient) -> dict[str, str]:
    """Store s1 (its store fence and a zone inside it), store s2; a staff key of each."""
    for feature in (
        square_feature("s1-shop", name="Opéra", store_id="s1", half_side_m=60),
        square_feature("s1-shoes", kind="zone", store_id="s1", half_side_m=20),
        square_feature("s2-shop", LAT2, LON2, name="Bastille", store_id="s2"),
    ):
        r = await client.post("/v1/geofences", json=feature)
        assert r.status_code == 201, r.text
    keys = {}
    for store in ("s1", "s2"):
        r = await client.post(
            "/v1/api-keys", json={"name": store, "role": "staff", "store_ids": [store]}
        )
        assert r.status_code == 201, r.text
        keys[store] = r.json()["key"]
    return keys


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_stores_are_derived_from_fences_and_scoped_by_key(client: httpx.AsyncClient) -> None:
    keys = await _setup(client)
    r = await client.get("/v1/stores")
    assert r.status_code == 200, r.text
    stores = {s["store_id"]: s for s in r.json()["stores"]}
    assert set(stores) == {"s1", "s2"}
    assert stores["s1"]["name"] == "Opéra" and stores["s1"]["fences"] == 2
    lon, lat = stores["s1"]["center"]
    assert abs(lon - LON0) < 1e-6 and abs(lat - LAT0) < 1e-6  # both squares share a centre
    r = await client.get("/v1/stores", headers=_as(keys["s2"]))
    assert [s["store_id"] for s in r.json()["stores"]] == ["s2"]


async def test_presence_counts_people_not_ids_and_only_for_the_stores_own_staff(
    client: httpx.AsyncClient,
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    keys = await _setup(client)
    t = time.time() - 120
    pings = [
        ping("alice", *FAR, t),
        ping("alice", LAT0, LON0, t + 60),  # the shop and its shoe zone: counted once
        ping("bob", *FAR, t),
        ping("bob", *offset(LAT0, LON0, 45, 0), t + 60),  # the shop, not the zone
        ping("carol", *FAR, t),
        ping("carol", LAT2, LON2, t + 60),  # the other store
    ]
    r = await client.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200, r.text
    assert sorted((e["customer_id"], e["geofence_id"]) for e in r.json()["events"]) == [
        ("alice", "s1-shoes"),
        ("alice", "s1-shop"),
        ("bob", "s1-shop"),
        ("carol", "s2-shop"),
    ]
    r = await client.get("/v1/stores/s1/presence", headers=_as(keys["s1"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["store_id"] == "s1" and body["inside"] == 2
    assert body["timezone"] == "Europe/Paris"  # no fence says: the store's place does
    midnight = datetime.now(ZoneInfo("Europe/Paris")).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    today = 1 if t + 60 >= midnight.timestamp() else 0  # run just after midnight: yesterday's
    # the store's own fence counts visits; a walk into a zone is not a second one
    assert body["today"] == {"enter": 2 * today, "dwell": 0, "exit": 0}
    assert {f["geofence_id"]: (f["kind"], f["inside"]) for f in body["fences"]} == {
        "s1-shop": ("store", 2),
        "s1-shoes": ("zone", 1),
    }
    assert datetime.fromisoformat(body["at"]).utcoffset().total_seconds() == 0
    assert not {"alice", "bob", "carol"} & set(r.text.split('"'))  # never a customer id
    r = await client.get("/v1/stores/s1/presence", headers=_as(keys["s2"]))
    assert r.status_code == 403 and "'s1'" in r.json()["detail"]
    r = await client.get("/v1/stores/s1/presence/stream", headers=_as(keys["s2"]))
    assert r.status_code == 403 and "'s1'" in r.json()["detail"]
    r = await client.get("/v1/stores/nowhere/presence")
    assert r.status_code == 404 and "'nowhere'" in r.json()["detail"]
    r = await client.get("/v1/stores/s2/presence")  # admin: every store
    assert r.json()["inside"] == 1
    # an API process that owns no partition (none of these customers) counts the same
    from adapters.api.app import create_app
    from adapters.composition import build_services

    api = await build_services(settings_factory(role="api"), background=False)
    try:
        assert api.worker is None
        transport = httpx.ASGITransport(app=create_app(services=api))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as other:
            r = await other.get("/v1/stores/s1/presence", headers=_as(keys["s1"]))
            assert r.status_code == 200, r.text
            assert {k: v for k, v in r.json().items() if k != "at"} == {
                k: v for k, v in body.items() if k != "at"
            }
    finally:
        await api.close()


async def test_fence_cells_are_the_index_cover_interior_and_boundary(
    client: httpx.AsyncClient,
) -> None:
    keys = await _setup(client)
    r = await client.get("/v1/geofences/s1-shop/cells")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "FeatureCollection" and doc["resolution"] == 11
    assert doc["truncated"] is False and doc["total"] == len(doc["features"]) > 0
    fence = shape(square_feature("s1-shop", half_side_m=60)["geometry"])
    full = [f for f in doc["features"] if f["properties"]["full"]]
    edge = [f for f in doc["features"] if not f["properties"]["full"]]
    assert full and edge
    for f in doc["features"]:
        cell = int(f["properties"]["h3"], 16)
        assert h3.int_to_str(cell) == f["properties"]["h3"]
        assert h3.get_resolution(f["properties"]["h3"]) == f["properties"]["res"]
        ring = f["geometry"]["coordinates"][0]
        assert f["geometry"]["type"] == "Polygon" and ring[0] == ring[-1]
        poly = Polygon(ring)
        if f["properties"]["full"]:
            assert fence.buffer(1e-7).contains(poly)  # interior: wholly inside
        else:
            # at the fence's edge (the cover is conservative: within a cell's edge, 25 m)
            assert f["properties"]["res"] == 11 and poly.distance(fence) * 111_195 < 25
    # every point of the fence lies in one of its cells (the cover misses nothing)
    lat, lon = offset(LAT0, LON0, 55, -55)
    here = h3.latlng_to_cell(lat, lon, 11)
    ancestors = {h3.cell_to_parent(here, r) for r in range(0, 12)}
    assert ancestors & {f["properties"]["h3"] for f in doc["features"]}
    r = await client.get("/v1/geofences/s1-shop/cells", headers=_as(keys["s2"]))
    assert r.status_code == 403 and "'s1'" in r.json()["detail"]
    r = await client.get("/v1/geofences/s1-shop/cells", headers=_as(keys["s1"]))
    assert r.status_code == 200
    assert (await client.get("/v1/geofences/nope/cells")).status_code == 404
