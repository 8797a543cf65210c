"""Distances and squares for the browser tests (metres on the sphere, as the API measures)."""

from __future__ import annotations

import math
from typing import Any

R = 6_371_008.8


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance between two (lon, lat)."""
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def square(
    fence_id: str, lon: float, lat: float, half_m: float, kind: str, store_id: str, name: str
) -> dict[str, Any]:
    dlat = half_m / 111_195.0
    dlon = dlat / math.cos(math.radians(lat))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return {
        "type": "Feature",
        "id": fence_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, "kind": kind, "store_id": store_id},
    }
