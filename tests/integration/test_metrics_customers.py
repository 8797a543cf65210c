"""GET /metrics says how many customers' state the process holds: what its memory grows with."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import LAT0, LON0, ping, square_feature


async def _held(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {
        s.labels["state"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "geo_customers_in_memory"
        for s in family.samples
    }


async def test_customers_held_count_presence_at_first_fix_and_profiles_at_first_visit(
    client: httpx.AsyncClient,
) -> None:
    assert await _held(client) == {"presence": 0.0, "profile": 0.0}
    await client.post("/v1/geofences", json=square_feature("held-store"))
    t0 = time.time() - 900
    far = LAT0 + 0.02  # ~2 km north: outside the store
    pings = [ping("ana", far, LON0, t0), ping("bob", far, LON0, t0)]
    r = await client.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200, r.text
    assert await _held(client) == {"presence": 2.0, "profile": 0.0}

    # ana visits the store: in, stays, leaves
    visit = [ping("ana", LAT0, LON0, t0 + 60 + 30 * k) for k in range(8)]
    visit.append(ping("ana", far, LON0, t0 + 400))
    r = await client.post("/v1/pings?wait=true", json={"pings": visit})
    assert [e["type"] for e in r.json()["events"]][:1] == ["enter"], r.text
    held = await _held(client)
    assert held["presence"] == 2.0
    assert held["profile"] == 1.0  # ana's, made by her visit; bob has none yet
