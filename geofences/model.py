"""The geofence value type shared by validation, the index and the adapters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import shapely


class FenceKind(StrEnum):
    STORE = "store"
    ZONE = "zone"  # a department inside a store
    COMPETITOR = "competitor"


class GeofenceError(ValueError):
    """A geofence was refused. `field` is a JSON-pointer-ish path, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Geofence:
    """A validated fence.

    `geometry` is the GeoJSON geometry exactly as accepted (Polygon, MultiPolygon, or Point).
    For a Point, `radius_m` is set and the fence is the geodesic circle around it.
    `shape` is the shapely geometry in lon/lat (planar, as RFC 7946 reads edges); for a circle it
    is None because circles are tested exactly with the haversine distance.
    """

    id: str
    name: str
    kind: FenceKind
    store_id: str | None
    geometry: dict[str, Any]
    shape: shapely.Geometry | None = None
    radius_m: float | None = None
    timezone: str | None = None
    opening_hours: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_circle(self) -> bool:
        return self.radius_m is not None


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


def open_at(hours: Mapping[str, Sequence[Sequence[str]]] | None, local: datetime) -> bool | None:
    """Whether a store with these (validated) opening hours is open at `local`, a time in the
    fence's own zone; None when its hours are not known. A day not listed is closed. Valid
    "HH:MM" strings compare in time order, so no parsing per call ("24:00" closes the day)."""
    if hours is None:
        return None
    now = f"{local.hour:02d}:{local.minute:02d}"
    return any(start <= now < end for start, end in hours.get(WEEKDAYS[local.weekday()], ()))
