"""Beacons and NFC taps at the door fire campaigns, through the public API: a sighting or a tap
is a presence change like a GPS fix (one unit of work, the same reaction pipeline), so a
campaign restricted to that source decides in the same commit, once per visit, and a
beacon-confirmed dwell is a store visit in the profile."""

from __future__ import annotations

import time
from typing import Any

import httpx

from adapters.codecs.nfc_sun import sdm_mac
from tests.helpers import LAT0, LON0, offset, ping
from tests.integration.test_beacons import ibeacon, sighting, store_with_zone
from tests.integration.test_campaigns_api import campaign, offer

T0 = time.time() - 3600.0
GRANTED = {"status": "granted", "at": "2026-01-05T09:00:00Z", "source": "app"}
ZERO = "00" * 16
UID = "041E3C8A2D6B80"


async def _store(
    c: httpx.AsyncClient, *sources: str, event: str = "enter", kinds: tuple[str, ...] = ("store",)
) -> None:
    """Store s1 with department s1-dept, its beacon, a plain tag at the till and a SUN tag on
    a shelf, a customer with every consent, and campaign c1 on `event` in a fence of `kinds`
    (any kind when empty) from `sources` only (any when none)."""
    await store_with_zone(c)
    assert (await c.post("/v1/beacons", json=ibeacon(id="b1"))).status_code == 201
    r = await c.post("/v1/nfc-tags", json={"id": "till", "geofence_id": "s1"})
    assert r.status_code == 201, r.text
    sun = {"id": "shelf", "geofence_id": "s1-dept", "uid": UID, "sun": {"file_read_key": ZERO}}
    assert (await c.post("/v1/nfc-tags", json=sun)).status_code == 201
    consents = {p: GRANTED for p in ("location", "push", "sms", "profiling")}
    r = await c.put("/v1/customers/alice", json={"first_name": "Léa", "consents": consents})
    assert r.status_code == 200, r.text
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    trigger: dict[str, Any] = {"type": "presence", "event": event}
    if kinds:
        trigger["fence_kinds"] = list(kinds)
    if sources:
        trigger["sources"] = list(sources)
    r = await c.post("/v1/campaigns", json=campaign(triggers=[trigger], conditions=None))
    assert r.status_code == 201, r.text


async def _decisions(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await c.get("/v1/decisions", params={"customer_id": "alice"})
    assert r.status_code == 200, r.text
    ds: list[dict[str, Any]] = r.json()["decisions"]
    return ds


async def _sight(c: httpx.AsyncClient, ts: float) -> list[dict[str, Any]]:
    r = await c.post("/v1/beacon-sightings?wait=true", json={"sightings": [sighting(ts)]})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def _tap(c: httpx.AsyncClient, tag: str, ts: float, sun: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": "alice", "tag_id": tag, "ts": ts}
    if sun is not None:
        body["sun"] = sun
    r = await c.post("/v1/nfc-taps", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _sent(ds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in ds if d["outcome"] == "send"]


async def test_a_beacon_sighting_fires_a_beacon_campaign_once_per_visit(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _store(c, "beacon")
    events = await _sight(c, T0)
    store_enter = next(e for e in events if e["geofence_id"] == "s1")
    assert (store_enter["type"], store_enter["source"]) == ("enter", "beacon")
    for k in range(1, 4):  # heard again and again during the visit: no new enter, no offer
        assert await _sight(c, T0 + 20 * k) == []
    ds = await _decisions(c)
    assert len(ds) == 1
    d = ds[0]
    assert (d["outcome"], d["campaign_id"], d["channel"]) == ("send", "c1", "push")
    assert d["presence_event_id"] == store_enter["id"]
    assert d["traces"][0]["result"] == "chosen"
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_gps_enter_does_not_fire_a_beacon_only_campaign(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    await _store(c, "beacon")
    far = offset(LAT0, LON0, 400, 0)
    pings = [ping("alice", *far, T0), ping("alice", LAT0, LON0, T0 + 60)]
    r = await c.post("/v1/pings?wait=true", json={"pings": pings})
    assert [e["source"] for e in r.json()["events"]] == ["gps"]
    assert await _decisions(c) == []  # no campaign's trigger matched: nothing to decide


async def test_a_plain_nfc_tap_fires_an_nfc_campaign(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _store(c, "nfc")
    tap = await _tap(c, "till", T0)
    assert [(e["type"], e["source"]) for e in tap["events"]] == [("enter", "nfc")]
    assert (await _tap(c, "till", T0 + 60))["events"] == []  # the same visit
    ds = await _decisions(c)
    assert [(d["outcome"], d["presence_event_id"]) for d in ds] == [
        ("send", tap["events"][0]["id"])
    ]
    row = await svc.pool.fetchrow("SELECT payload FROM outbox")
    assert row["payload"]["push"]["body"] == "À s1"


async def test_a_sun_verified_tap_fires_an_nfc_campaign(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    await _store(c, "nfc")
    cmac = sdm_mac(bytes(16), bytes.fromhex(UID), 9).hex()
    tap = await _tap(c, "shelf", T0, {"uid": UID, "ctr": "000009", "cmac": cmac})
    assert tap["verified"] and tap["counter"] == 9
    store = next(e for e in tap["events"] if e["geofence_id"] == "s1")
    ds = await _decisions(c)
    assert [(d["outcome"], d["campaign_id"], d["presence_event_id"]) for d in ds] == [
        ("send", "c1", store["id"])
    ]
    # the same tap replayed is refused and decides nothing
    again = {"uid": UID, "ctr": "000009", "cmac": cmac}
    r = await c.post(
        "/v1/nfc-taps", json={"customer_id": "alice", "tag_id": "shelf", "ts": T0 + 5, "sun": again}
    )
    assert r.status_code == 409
    assert len(await _decisions(c)) == 1


async def test_gps_beacon_and_nfc_in_one_visit_give_one_offer(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _store(c, kinds=())  # any source, any fence: the store's and the department's enters
    far = offset(LAT0, LON0, 400, 0)
    pings = [ping("alice", *far, T0), ping("alice", LAT0, LON0, T0 + 60)]
    r = await c.post("/v1/pings?wait=true", json={"pings": pings})
    assert [(e["geofence_id"], e["source"]) for e in r.json()["events"]] == [("s1", "gps")]
    beacon = await _sight(c, T0 + 120)  # the department: the store is already entered
    assert [(e["geofence_id"], e["source"]) for e in beacon] == [("s1-dept", "beacon")]
    assert (await _tap(c, "till", T0 + 180))["events"] == []
    ds = await _decisions(c)
    assert len(ds) == 2  # the store's GPS enter and the department's beacon enter decided
    assert len(_sent(ds)) == 1  # one offer: the campaign's cooldown holds the second
    held = next(d for d in ds if d["outcome"] != "send")
    assert (held["outcome"], held["traces"][0]["result"]) == ("none", "cooldown")
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_beacon_confirmed_dwell_is_one_store_visit(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _store(c, "beacon", event="dwell")
    dwell_after = svc.settings.dwell_after_s
    heard = [T0 + k * 30.0 for k in range(int(dwell_after // 30) + 3)]
    events = [e for t in heard for e in await _sight(c, t)]
    dwells = [e for e in events if e["type"] == "dwell" and e["geofence_id"] == "s1"]
    assert [e["source"] for e in dwells] == ["beacon"]
    visits = await svc.pool.fetchval(
        "SELECT count(*) FROM behaviour_events WHERE customer_id = 'alice' AND type = $1",
        "store_visit",
    )
    assert visits == 1
    # in the in-memory profile too, which decisions read: visit velocity counts it
    profile = (await c.get("/v1/customers/alice/profile")).json()
    assert profile["velocity"]["figures"]["store_visit"]["latest"] > 0
    ds = await _decisions(c)
    assert [(d["outcome"], d["presence_event_id"]) for d in ds] == [("send", dwells[0]["id"])]
