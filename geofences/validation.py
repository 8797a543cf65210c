"""GeoJSON Feature -> Geofence, refusing anything doubtful with a field path and a human reason.

Nothing is repaired: an unclosed ring, a bow-tie or a polygon across the antimeridian is refused,
because a silently "fixed" fence would trigger offers in a place nobody drew.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely

from geofences.geodesy import EARTH_RADIUS_M, wrap_lon
from geofences.model import FenceKind, Geofence, GeofenceError

_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_HHMM_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d|24:00")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_area_km2: float = 25.0  # polygons only: "absurdly large" areas are refused
    min_area_m2: float = 1.0  # empty / degenerate (polygons and circles)
    max_radius_m: float = 5_000.0  # circles only
    max_vertices: int = 10_000


_DEFAULT_LIMITS = ValidationLimits()


def fence_from_feature(
    feature: Mapping[str, Any],
    limits: ValidationLimits = _DEFAULT_LIMITS,
    *,
    fence_id: str | None = None,
) -> Geofence:
    """Validate one GeoJSON Feature; raise GeofenceError(field, reason) on the first problem."""
    if not isinstance(feature, Mapping):
        raise GeofenceError("", "a feature must be a JSON object")
    if feature.get("type") != "Feature":
        raise GeofenceError("type", f"must be 'Feature', got {feature.get('type')!r}")
    fid = fence_id if fence_id is not None else feature.get("id")
    if fid is None:
        raise GeofenceError("id", "missing: the feature has no id and none was given")
    _check_id("id", fid)
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise GeofenceError("properties", "must be an object")
    name = props.get("name")
    if not isinstance(name, str) or not name.strip():
        raise GeofenceError("properties.name", "required: a non-blank string")
    if len(name) > 200:
        raise GeofenceError("properties.name", f"{len(name)} characters, more than 200")
    kind_raw: Any = props.get("kind")
    try:
        kind = FenceKind(kind_raw)
    except (ValueError, TypeError):
        allowed = ", ".join(k.value for k in FenceKind)
        raise GeofenceError("properties.kind", f"{kind_raw!r} is not one of {allowed}") from None
    store_id = props.get("store_id")
    if store_id is None:
        if kind is not FenceKind.COMPETITOR:
            raise GeofenceError("properties.store_id", f"required for a fence of kind {kind}")
    else:
        _check_id("properties.store_id", store_id)
    geometry, shape, radius = _geometry(feature.get("geometry"), props, limits)
    return Geofence(
        id=fid,
        name=name,
        kind=kind,
        store_id=store_id,
        geometry=geometry,
        shape=shape,
        radius_m=radius,
        timezone=_timezone(props.get("timezone")),
        opening_hours=_opening_hours(props.get("opening_hours")),
        metadata=_metadata(props.get("metadata")),
    )


def fences_from_collection(
    collection: Mapping[str, Any], limits: ValidationLimits = _DEFAULT_LIMITS
) -> tuple[list[Geofence], list[tuple[int, GeofenceError]]]:
    """Validate every feature; the good ones come back with every bad one and its index."""
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise GeofenceError("type", "must be a FeatureCollection object")
    features = collection.get("features")
    if not isinstance(features, list):
        raise GeofenceError("features", "must be an array of features")
    good: list[Geofence] = []
    bad: list[tuple[int, GeofenceError]] = []
    seen: dict[str, int] = {}
    for i, feature in enumerate(features):
        try:
            fence = fence_from_feature(feature, limits)
        except GeofenceError as e:
            bad.append((i, e))
            continue
        if fence.id in seen:
            bad.append(
                (i, GeofenceError("id", f"duplicate id {fence.id!r} (feature {seen[fence.id]})"))
            )
            continue
        seen[fence.id] = i
        good.append(fence)
    return good, bad


def fence_to_feature(fence: Geofence) -> dict[str, Any]:
    """The inverse of fence_from_feature (the fence's id goes in the feature's id)."""
    props: dict[str, Any] = {
        "name": fence.name,
        "kind": fence.kind.value,
        "store_id": fence.store_id,
    }
    if fence.radius_m is not None:
        props["radius_m"] = fence.radius_m
    if fence.timezone is not None:
        props["timezone"] = fence.timezone
    if fence.opening_hours is not None:
        props["opening_hours"] = {d: [list(iv) for iv in v] for d, v in fence.opening_hours.items()}
    props["metadata"] = dict(fence.metadata)
    geometry = {"type": fence.geometry["type"], "coordinates": _copy(fence.geometry["coordinates"])}
    return {"type": "Feature", "id": fence.id, "geometry": geometry, "properties": props}


def polygon_area_m2(shape: shapely.Geometry) -> float:
    """Area on the sphere, close enough for limits: each part in a sinusoidal (equal-area)
    projection centred on it, so parts near the antimeridian or far apart stay exact-ish."""
    total = 0.0
    for part in shapely.get_parts(shape):
        lon0 = float(shapely.centroid(part).x)

        def project(xy: np.ndarray[Any, Any], lon0: float = lon0) -> np.ndarray[Any, Any]:
            lat = xy[:, 1]
            x = wrap_lon(xy[:, 0] - lon0) * np.cos(np.radians(lat)) * _M_PER_DEG
            return np.column_stack([x, lat * _M_PER_DEG])

        total += float(shapely.area(shapely.transform(part, project)))
    return total


# --- geometry ---------------------------------------------------------------------------------


def _geometry(
    geom: Any, props: Mapping[str, Any], limits: ValidationLimits
) -> tuple[dict[str, Any], shapely.Geometry | None, float | None]:
    if not isinstance(geom, Mapping):
        raise GeofenceError("geometry", "required: a GeoJSON geometry object")
    gtype = geom.get("type")
    coords = geom.get("coordinates")
    radius = props.get("radius_m")
    if gtype == "Point":
        pos = _position("geometry.coordinates", coords)
        r = _radius(radius, limits)
        return {"type": "Point", "coordinates": pos}, None, r
    if gtype not in ("Polygon", "MultiPolygon"):
        raise GeofenceError(
            "geometry.type", f"{gtype!r} cannot be a fence: use Polygon, MultiPolygon or Point"
        )
    if radius is not None:
        raise GeofenceError("properties.radius_m", "only a Point geometry takes a radius")
    if gtype == "Polygon":
        rings = _polygon("geometry.coordinates", coords)
        polys = [rings]
    else:
        if not isinstance(coords, list) or not coords:
            raise GeofenceError("geometry.coordinates", "a MultiPolygon needs a non-empty array")
        polys = [_polygon(f"geometry.coordinates[{i}]", p) for i, p in enumerate(coords)]
    n = sum(len(ring) for rings in polys for ring in rings)
    if n > limits.max_vertices:
        raise GeofenceError(
            "geometry.coordinates", f"{n} positions, more than {limits.max_vertices}"
        )
    parts = [
        shapely.Polygon([p[:2] for p in rings[0]], [[p[:2] for p in r] for r in rings[1:]])
        for rings in polys
    ]
    for i, part in enumerate(parts):
        lons = shapely.get_coordinates(part)[:, 0]
        if lons.max() - lons.min() > 180.0:
            where = "geometry.coordinates" + ("" if gtype == "Polygon" else f"[{i}]")
            raise GeofenceError(
                where,
                "spans more than 180° of longitude: split it at the antimeridian into a "
                "MultiPolygon (RFC 7946 §3.1.9)",
            )
    shape = parts[0] if gtype == "Polygon" else shapely.MultiPolygon(parts)
    if shapely.area(shapely.convex_hull(shape)) == 0.0:
        raise GeofenceError("geometry.coordinates", "degenerate: the polygon has no area")
    if not shapely.is_valid(shape):
        reason = shapely.is_valid_reason(shape)
        raise GeofenceError("geometry.coordinates", f"invalid polygon: {reason}")
    area = polygon_area_m2(shape)
    if area < limits.min_area_m2:
        raise GeofenceError(
            "geometry.coordinates",
            f"area {area:.3g} m² is below the minimum {limits.min_area_m2} m²",
        )
    if area > limits.max_area_km2 * 1e6:
        raise GeofenceError(
            "geometry.coordinates",
            f"area {area / 1e6:.3g} km² is above the maximum {limits.max_area_km2} km²",
        )
    shapely.prepare(shape)
    out = polys[0] if gtype == "Polygon" else polys
    return {"type": gtype, "coordinates": out}, shape, None


def _polygon(path: str, coords: Any) -> list[list[list[float]]]:
    if not isinstance(coords, list) or not coords:
        raise GeofenceError(path, "a Polygon needs a non-empty array of linear rings")
    rings: list[list[list[float]]] = []
    for i, ring in enumerate(coords):
        rpath = f"{path}[{i}]"
        if not isinstance(ring, list):
            raise GeofenceError(rpath, "a linear ring must be an array of positions")
        pts = [_position(f"{rpath}[{j}]", p) for j, p in enumerate(ring)]
        if len(ring) < 4:
            raise GeofenceError(rpath, f"a linear ring needs at least 4 positions, got {len(ring)}")
        if pts[0] != pts[-1]:
            raise GeofenceError(rpath, "ring is not closed: the first and last positions differ")
        rings.append(pts)
    return rings


def _position(path: str, pos: Any) -> list[float]:
    if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
        raise GeofenceError(path, "expected a position [longitude, latitude] (wrong nesting?)")
    out: list[float] = []
    for v in pos:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise GeofenceError(path, f"{v!r} is not a number")
        if not math.isfinite(v):
            raise GeofenceError(path, f"{v} is not a finite number")
        out.append(float(v))
    if not -180.0 <= out[0] <= 180.0:
        raise GeofenceError(path, f"longitude {out[0]} is outside [-180, 180]")
    if not -90.0 <= out[1] <= 90.0:
        raise GeofenceError(path, f"latitude {out[1]} is outside [-90, 90]")
    return out


def _radius(radius: Any, limits: ValidationLimits) -> float:
    field = "properties.radius_m"
    if radius is None:
        raise GeofenceError(field, "required for a Point geometry (the circle's radius in metres)")
    if isinstance(radius, bool) or not isinstance(radius, int | float):
        raise GeofenceError(field, f"{radius!r} is not a number")
    r = float(radius)
    if not math.isfinite(r):
        raise GeofenceError(field, f"{radius} is not a finite number")
    if r <= 0:
        raise GeofenceError(field, f"must be positive, got {r}")
    if r > limits.max_radius_m:
        raise GeofenceError(field, f"{r} m is above the maximum {limits.max_radius_m} m")
    if math.pi * r * r < limits.min_area_m2:
        raise GeofenceError(field, f"{r} m gives an area below the minimum {limits.min_area_m2} m²")
    return r


# --- properties -------------------------------------------------------------------------------


def _check_id(field: str, value: Any) -> None:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise GeofenceError(field, f"{value!r} is not 1..128 characters of A-Z a-z 0-9 _ . : -")


def _timezone(tz: Any) -> str | None:
    if tz is None:
        return None
    if not isinstance(tz, str) or not tz:
        raise GeofenceError("properties.timezone", "must be an IANA time zone name")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise GeofenceError(
            "properties.timezone", f"{tz!r} is not a known IANA time zone"
        ) from None
    return tz


def _opening_hours(hours: Any) -> dict[str, Any] | None:
    if hours is None:
        return None
    if not isinstance(hours, Mapping):
        raise GeofenceError("properties.opening_hours", "must be an object keyed by day (mon..sun)")
    out: dict[str, Any] = {}
    for day, spans in hours.items():
        path = f"properties.opening_hours.{day}"
        if day not in DAYS:
            raise GeofenceError(path, f"unknown day {day!r}: use {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise GeofenceError(path, 'must be an array of ["HH:MM", "HH:MM"] pairs')
        parsed: list[list[str]] = []
        for i, span in enumerate(spans):
            spath = f"{path}[{i}]"
            if not (isinstance(span, list | tuple) and len(span) == 2):
                raise GeofenceError(spath, 'must be a pair ["HH:MM", "HH:MM"]')
            start, end = span
            for v in span:
                if not isinstance(v, str) or not _HHMM_RE.fullmatch(v):
                    raise GeofenceError(
                        spath, f"{v!r} is not a time HH:MM (00:00..23:59, or 24:00)"
                    )
            if start == "24:00":
                raise GeofenceError(spath, "cannot open at 24:00")
            if start >= end:
                raise GeofenceError(
                    spath, f"opens at {start} but closes at {end}: must close later"
                )
            if parsed and start < parsed[-1][1]:
                raise GeofenceError(spath, "overlaps or precedes the previous interval")
            parsed.append([start, end])
        out[day] = parsed
    return out


def _metadata(meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise GeofenceError("properties.metadata", "must be an object")
    return dict(meta)


def _copy(value: Any) -> Any:
    return [_copy(v) for v in value] if isinstance(value, list) else value
