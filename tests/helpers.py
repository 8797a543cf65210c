"""Small builders shared by tests: fences around a point, pings along a path, the engine behind
an admin client with decisions independent of the clock."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from adapters.composition import Services

M_PER_DEG_LAT = 111_195.0

# Place de la République, Paris: a real place for realistic figures
LAT0, LON0 = 48.8674, 2.3636


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    dlat = north_m / M_PER_DEG_LAT
    dlon = east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def square_feature(
    fence_id: str,
    lat: float = LAT0,
    lon: float = LON0,
    half_side_m: float = 50.0,
    *,
    kind: str = "store",
    store_id: str | None = "s1",
    name: str | None = None,
    **props: Any,
) -> dict[str, Any]:
    corners = [
        offset(lat, lon, -half_side_m, -half_side_m),
        offset(lat, lon, -half_side_m, half_side_m),
        offset(lat, lon, half_side_m, half_side_m),
        offset(lat, lon, half_side_m, -half_side_m),
    ]
    ring = [[c[1], c[0]] for c in corners]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "id": fence_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name or fence_id, "kind": kind, "store_id": store_id, **props},
    }


def circle_feature(
    fence_id: str,
    lat: float,
    lon: float,
    radius_m: float,
    *,
    kind: str = "store",
    store_id: str | None = "s1",
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": fence_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": fence_id, "kind": kind, "store_id": store_id, "radius_m": radius_m},
    }


def ping(
    who: str,
    lat: float,
    lon: float,
    ts: float,
    acc: float | None = 5.0,
    *,
    device: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {"lat": lat, "lon": lon, "ts": ts, **extra}
    row["device_id" if device else "customer_id"] = who
    if acc is not None:
        row["accuracy_m"] = acc
    return row


# sending hours open all day, every day, and no holdout: a decision's outcome does not depend on
# when the test runs
ALWAYS_OPEN: dict[str, Any] = {
    "decision_hours": (0.0, 24.0),
    "decision_sms_hours": (0.0, 24.0),
    "decision_sms_weekdays": list(range(7)),
    "decision_sms_holiday_country": "",
    "decision_holdout_pct": 0.0,
}


@asynccontextmanager
async def open_services(
    settings_factory: Any, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The engine (no background tasks) with ALWAYS_OPEN | overrides, and an admin client."""
    from adapters.api.app import create_app
    from adapters.composition import build_services
    from tests.conftest import ADMIN_KEY

    svc = await build_services(settings_factory(**(ALWAYS_OPEN | overrides)), background=False)
    transport = httpx.ASGITransport(app=create_app(services=svc))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as c:
            yield c, svc
    finally:
        await svc.close()
