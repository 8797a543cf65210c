"""BLE beacons end to end on real PostgreSQL: the registry, store scopes, and sightings into
presence (enter, not-heard exit), with bad and unknown rows."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import LAT0, LON0, offset, square_feature
from tests.integration.test_owntracks import _send

T0 = time.time() - 3600.0
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _key(client: httpx.AsyncClient, role: str, stores: list[str] | None = None) -> str:
    r = await client.post(
        "/v1/api-keys", json={"name": role, "role": role, "store_ids": stores or []}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def store_with_zone(client: httpx.AsyncClient, store: str = "s1") -> None:
    """A 100 m store `<store>` with a 16 m department `<store>-dept` in its north-east."""
    r = await client.post("/v1/geofences", json=square_feature(store, store_id=store))
    assert r.status_code == 201, r.text
    lat, lon = offset(LAT0, LON0, 30, 30)
    zone = square_feature(f"{store}-dept", lat, lon, 8.0, kind="zone", store_id=store)
    r = await client.post("/v1/geofences", json=zone)
    assert r.status_code == 201, r.text


def ibeacon(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"uuid": UUID, "major": 1, "minor": 7, "geofence_id": "s1-dept"}
    return {**body, **kw}


def sighting(ts: float, rssi: float = -62, who: str = "alice", **kw: Any) -> dict[str, Any]:
    return {"customer_id": who, "uuid": UUID, "major": 1, "minor": 7, "rssi": rssi, "ts": ts, **kw}


async def test_beacon_registry_crud(client: httpx.AsyncClient) -> None:
    await store_with_zone(client)
    r = await client.post("/v1/beacons", json=ibeacon(id="b1", uuid=UUID.upper().replace("-", "")))
    assert r.status_code == 201, r.text
    b = r.json()
    assert (b["type"], b["uuid"], b["store_id"], b["measured_power"]) == (
        "ibeacon",
        UUID,
        "s1",
        None,
    )
    r = await client.post("/v1/beacons", json=ibeacon(id="b2"))  # same identity
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "identity"
    r = await client.post("/v1/beacons", json=ibeacon(id="b1", minor=8))
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "id"
    eddy = {
        "namespace": "0xEDD1EBEAC04E5DEFA017",
        "instance": "0BDB87539B67",
        "geofence_id": "s1-dept",
        "measured_power": -62,
        "placement": "above the shoe shelf",
    }
    r = await client.post("/v1/beacons", json=eddy)
    assert r.status_code == 201, r.text
    assert r.json()["namespace"] == "edd1ebeac04e5defa017" and r.json()["id"].startswith("bc_")
    for body, field in [
        ({**eddy, "namespace": "edd1"}, "namespace"),
        ({**eddy, "instance": "zz" * 6}, "instance"),
        (ibeacon(uuid="not-a-uuid"), "uuid"),
        (ibeacon(minor=None), "minor"),
        (ibeacon(major=70000), "major"),
        (ibeacon(namespace="edd1ebeac04e5defa017"), "uuid"),
        (ibeacon(geofence_id="s1"), "geofence_id"),  # a store, not a zone
        (ibeacon(geofence_id="nope"), "geofence_id"),
        (ibeacon(measured_power=5), "measured_power"),
    ]:
        r = await client.post("/v1/beacons", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, (body, r.json())
    r = await client.put("/v1/beacons/b1", json=ibeacon(minor=9, measured_power=-60))
    assert r.status_code == 200 and r.json()["minor"] == 9
    r = await client.put("/v1/beacons/b3", json=ibeacon(minor=10))
    assert r.status_code == 201
    listed = (await client.get("/v1/beacons", params={"store_id": "s1"})).json()["beacons"]
    assert sorted(x["id"] for x in listed)[:2] == ["b1", "b3"] and len(listed) == 3
    assert (await client.get("/v1/beacons", params={"store_id": "s2"})).json()["beacons"] == []
    assert (await client.delete("/v1/beacons/b3")).status_code == 204
    r = await client.get("/v1/beacons/b3")
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "id"
    # deleting the zone removes its beacons
    assert (await client.delete("/v1/geofences/s1-dept")).status_code == 204
    assert (await client.get("/v1/beacons")).json()["beacons"] == []


async def test_staff_manage_only_their_stores_beacons(client: httpx.AsyncClient) -> None:
    await store_with_zone(client, "s1")
    await store_with_zone(client, "s2")
    staff = _as(await _key(client, "staff", ["s1"]))
    r = await client.post("/v1/beacons", headers=staff, json=ibeacon(id="mine"))
    assert r.status_code == 201, r.text
    r = await client.post("/v1/beacons", headers=staff, json=ibeacon(geofence_id="s2-dept"))
    assert r.status_code == 403
    await client.post("/v1/beacons", json=ibeacon(id="theirs", minor=2, geofence_id="s2-dept"))
    for method, url in [("GET", "/v1/beacons/theirs"), ("DELETE", "/v1/beacons/theirs")]:
        assert (await client.request(method, url, headers=staff)).status_code == 403
    r = await client.put("/v1/beacons/theirs", headers=staff, json=ibeacon(minor=3))
    assert r.status_code == 403  # taking another store's beacon over
    listed = (await client.get("/v1/beacons", headers=staff)).json()["beacons"]
    assert [b["id"] for b in listed] == ["mine"]
    r = await client.get("/v1/beacons", headers=staff, params={"store_id": "s2"})
    assert r.status_code == 403
    ingest = _as(await _key(client, "ingest"))
    assert (await client.get("/v1/beacons", headers=ingest)).status_code == 403
    r = await client.post("/v1/beacon-sightings?wait=true", headers=staff, json={"sightings": []})
    assert r.status_code == 403
    r = await client.post("/v1/beacon-sightings?wait=true", headers=ingest, json={"sightings": []})
    assert r.status_code == 200


async def test_sightings_enter_the_zone_and_its_store_then_exit_when_not_heard(
    client: httpx.AsyncClient, services: Any
) -> None:
    await store_with_zone(client)
    await client.post("/v1/beacons", json=ibeacon(id="b1", measured_power=-59))
    eddy = {"namespace": "edd1ebeac04e5defa017", "instance": "0bdb87539b67"}
    r = await client.post("/v1/beacons", json={**eddy, "geofence_id": "s1-dept"})
    assert r.status_code == 201
    rows = [
        sighting(T0, rssi=-85),  # ~20 m: far, ignored
        sighting(T0 + 10),  # ~1.4 m: near -> enter
        {**sighting(T0 + 10), "minor": 99},  # unknown beacon: ignored, not an error
        sighting(T0 + 20, rssi=-130),  # out of range: rejected
        {**sighting(T0 + 20), "uuid": "nope"},
        {**sighting(T0 + 20), "customer_id": None},
        {**sighting(T0 + 20), "major": None},
        {**sighting(T0 + 20), "ts": time.time() + 3600},
        {"customer_id": "alice", **eddy, "rssi": -60, "tx_power": -18, "ts": T0 + 30},
    ]
    r = await client.post("/v1/beacon-sightings?wait=true", json={"sightings": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 4
    assert {e["index"]: e["field"] for e in body["rejected"]} == {
        3: "rssi",
        4: "uuid",
        5: "device_id",
        6: "major",
        7: "ts",
    }
    assert body["ignored"] == [
        {"index": 0, "reason": "too_far"},
        {"index": 2, "reason": "unknown_beacon"},
    ]
    evs = [(e["type"], e["geofence_id"], e["source"]) for e in body["events"]]
    assert evs == [("enter", "s1", "beacon"), ("enter", "s1-dept", "beacon")]
    # a batch is applied in time order; a sighting older than one applied before is late
    r = await client.post("/v1/beacon-sightings?wait=true", json={"sightings": [sighting(T0 + 5)]})
    assert r.json()["ignored"] == [{"index": 0, "reason": "late"}]
    metrics = (await client.get("/metrics")).text
    assert 'geo_proximity_ignored_total{kind="beacon",reason="unknown_beacon"}' in metrics
    # the last sighting at T0+30: both exit 90 s later, since GPS never confirmed the store
    grace = services.settings.sweep_grace_s
    assert await services.runtime.sweep(now=T0 + 119 + grace) == []
    swept = await services.runtime.sweep(now=T0 + 121 + grace)
    assert [(e.type.value, e.geofence_id, e.ts, e.source, e.reason) for _, e in swept] == [
        ("exit", "s1", T0 + 120, "beacon", "not_heard"),
        ("exit", "s1-dept", T0 + 120, "beacon", "not_heard"),
    ]


async def test_a_far_reading_keeps_a_visit_but_never_starts_one(
    client: httpx.AsyncClient, services: Any
) -> None:
    """Hysteresis, as for GPS: near enters; any reading of the beacon keeps the visit it
    started; a far reading alone enters nothing."""
    await store_with_zone(client)
    assert (await client.post("/v1/beacons", json=ibeacon())).status_code == 201

    async def heard(ts: float, rssi: float, who: str = "alice") -> dict[str, Any]:
        body = {"sightings": [sighting(ts, rssi=rssi, who=who)]}
        r = await client.post("/v1/beacon-sightings?wait=true", json=body)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    far = -95.0  # ~50 m at the default -59 dBm: heard, not near
    assert (await heard(T0, far, "bob"))["ignored"] == [{"index": 0, "reason": "too_far"}]
    assert (await client.get("/v1/customers/bob/presence")).json()["inside"] == []
    assert len((await heard(T0, -62))["events"]) == 2  # near: the store and the department
    for k in range(1, 5):  # 4 far readings a minute apart: more than the 90 s not-heard hold
        assert await heard(T0 + 60 * k, far) == {
            "accepted": 1,
            "rejected": [],
            "ignored": [],
            "events": [],
        }
    grace = services.settings.sweep_grace_s
    held = await services.runtime.sweep(now=T0 + 240 + 89 + grace)
    assert [e.type.value for _, e in held] == ["dwell"] * 2  # 5 min in: a dwell, still held
    swept = await services.runtime.sweep(now=T0 + 240 + 91 + grace)
    assert [(e.type.value, e.reason) for _, e in swept] == [("exit", "not_heard")] * 2


async def test_device_sightings_resolve_and_whole_batch_errors(client: httpx.AsyncClient) -> None:
    await store_with_zone(client)
    await client.post("/v1/beacons", json=ibeacon())
    row = {**sighting(T0), "customer_id": None, "device_id": "phone-1"}
    r = await client.post("/v1/beacon-sightings?wait=true", json={"sightings": [row]})
    assert [e["customer_id"] for e in r.json()["events"]] == ["device:phone-1"] * 2
    presence = (await client.get("/v1/customers/device:phone-1/presence")).json()
    assert sorted(f["geofence_id"] for f in presence["inside"]) == ["s1", "s1-dept"]
    r = await client.post(
        "/v1/beacon-sightings?wait=true",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    r = await client.post("/v1/beacon-sightings?wait=true", json={"beacons": []})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sightings"
    r = await client.post(
        "/v1/beacon-sightings?wait=true", json={"sightings": [sighting(T0)] * 5001}
    )
    assert r.status_code == 413


async def test_an_owntracks_ios_beacon_message_is_a_sighting(
    client: httpx.AsyncClient, services: Any
) -> None:
    """The iOS app's `beacon` message (booklet json.md), wired through the OwnTracks hook."""
    await store_with_zone(client)
    await client.post("/v1/beacons", json=ibeacon(measured_power=-59))
    key = await _key(client, "ingest")
    msg = {"_type": "beacon", "uuid": UUID.upper(), "major": 1, "minor": 7, "tst": int(T0)}
    msg.update({"acc": 1.2, "rssi": -61, "prox": 2, "desc": "shoes"})
    for _ in range(2):  # a resend changes nothing
        r = await _send(client, key, msg, {"X-Limit-D": "iphone"})
        assert r.status_code == 200 and r.json() == []
    page = await client.get("/v1/presence-events", params={"customer_id": "device:jane/iphone"})
    assert [(e["type"], e["geofence_id"], e["source"]) for e in page.json()["events"]] == [
        ("enter", "s1", "beacon"),
        ("enter", "s1-dept", "beacon"),
    ]
    # iOS could not measure the RSSI (0): its own class decides; far is not near enough
    far = {**msg, "tst": int(T0) + 10, "rssi": 0, "prox": 3}
    assert (await _send(client, key, far, {"X-Limit-D": "ipad"})).status_code == 200
    r = await client.get("/v1/presence-events", params={"customer_id": "device:jane/ipad"})
    assert r.json()["events"] == []
    unknown = {**msg, "minor": 99}
    assert (await _send(client, key, unknown, {"X-Limit-D": "ipad"})).status_code == 200


async def test_a_hold_survives_a_restart(
    client: httpx.AsyncClient, services: Any, settings_factory: Any
) -> None:
    """The new state (hold, source, a customer with no fix yet) is stored and reloaded: a
    restarted engine exits the zone when the beacon's hold ends, as the first would have."""
    from adapters.composition import build_services

    await store_with_zone(client)
    await client.post("/v1/beacons", json=ibeacon())
    r = await client.post("/v1/beacon-sightings?wait=true", json={"sightings": [sighting(T0)]})
    assert len(r.json()["events"]) == 2
    restarted = await build_services(settings_factory(), background=False)
    try:
        engine = restarted.runtime.engine
        cur = engine.cursor("alice")
        assert cur is not None and cur.last_ts == float("-inf") and cur.last_event_ts == T0
        zone = engine.inside("alice")["s1-dept"]
        assert (zone.source, zone.gps_confirmed, zone.held_by) == ("beacon", False, "beacon")
        assert abs((zone.held_until or 0) - (T0 + 90)) < 1e-3
        swept = await restarted.runtime.sweep(now=T0 + 91 + restarted.settings.sweep_grace_s)
        assert sorted((e.geofence_id, e.reason) for _, e in swept) == [
            ("s1", "not_heard"),
            ("s1-dept", "not_heard"),
        ]
    finally:
        await restarted.close()
