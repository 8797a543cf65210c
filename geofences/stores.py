"""Stores as the fences describe them: every fence carrying a `store_id` belongs to that store.

There is no store table: a store exists while one of its fences does, so what the console lists
(GET /v1/stores) is derived from the live fences, with the store fence's name, the centre the
map flies to and the time zone its "today" is counted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
import tzfpy
from numpy.typing import NDArray

from geofences.model import FenceKind, Geofence

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StoreSite:
    store_id: str
    name: str | None  # the store fence's name; None when the store has only zones
    fence_ids: tuple[str, ...]  # every fence of the store, sorted
    store_fence_ids: tuple[str, ...]  # those of kind store (the visit itself, not a zone)
    center: tuple[float, float]  # lon, lat: the mean of the fences' centroids
    timezone: str | None  # declared on a fence (the store fence's first); None: not declared


def store_sites(fences: Sequence[Geofence]) -> dict[str, StoreSite]:
    """Every store named by a fence, by store id (sorted)."""
    mine = [f for f in fences if f.store_id is not None]
    if not mine:
        return {}
    lon, lat = _centroids(mine)
    by_store: dict[str, list[int]] = {}
    for i, f in enumerate(mine):
        by_store.setdefault(str(f.store_id), []).append(i)
    sites = {}
    for store_id in sorted(by_store):
        rows = sorted(by_store[store_id], key=lambda i: mine[i].id)
        own = [mine[i] for i in rows]
        shops = [f for f in own if f.kind is FenceKind.STORE]
        declared = [f.timezone for f in (*shops, *own) if f.timezone]
        sites[store_id] = StoreSite(
            store_id=store_id,
            name=shops[0].name if shops else None,
            fence_ids=tuple(f.id for f in own),
            store_fence_ids=tuple(f.id for f in shops),
            center=(float(lon[rows].mean()), float(lat[rows].mean())),
            timezone=declared[0] if declared else None,
        )
    return sites


def _centroids(fences: Sequence[Geofence]) -> tuple[Floats, Floats]:
    """(lon, lat) per fence: a circle's centre, a polygon's planar centroid (vectorised)."""
    lon, lat = np.empty(len(fences)), np.empty(len(fences))
    polys = [i for i, f in enumerate(fences) if f.shape is not None]
    for i, f in enumerate(fences):
        if f.shape is None:
            lon[i], lat[i] = f.geometry["coordinates"][:2]
    if polys:
        shapes = np.array([fences[i].shape for i in polys], dtype=object)
        xy = shapely.get_coordinates(shapely.centroid(shapes))
        lon[polys], lat[polys] = xy[:, 0], xy[:, 1]
    return lon, lat


def zone_of(site: StoreSite) -> ZoneInfo:
    """The store's time zone: declared on a fence, else the zone at its centre (tzfpy, the
    time-zone boundaries built into the wheel), else UTC (the open sea has none)."""
    for name in (site.timezone, tzfpy.get_tz(*site.center)):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")
