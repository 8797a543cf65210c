"""FenceIndex against brute force: random fences (tiny and huge, circles, holes, MultiPolygons,
at the antimeridian and near the poles) and random points, many on or near boundaries."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofences.geodesy import haversine_m, haversine_m_vec
from geofences.index import FenceIndex
from geofences.model import Geofence
from geofences.validation import fence_from_feature

M_PER_DEG = 111_195.0
TIE_M = 1e-6  # circles: a point this close to the circle may fall either way (float noise)


def _feature(fid: str, geometry: dict[str, Any], radius: float | None = None) -> Geofence:
    props: dict[str, Any] = {"name": fid, "kind": "competitor", "store_id": None}
    if radius is not None:
        props["radius_m"] = radius
    return fence_from_feature(
        {"type": "Feature", "id": fid, "geometry": geometry, "properties": props}
    )


def _star(lat: float, lon: float, size_m: float, n: int, jitter: list[float]) -> list[list[float]]:
    """A simple star-shaped ring (angles sorted, so it never crosses itself)."""
    dlat = size_m / M_PER_DEG
    dlon = size_m / (M_PER_DEG * math.cos(math.radians(lat)))
    pts = []
    for k in range(n):
        a = (k + 0.5 * jitter[k % len(jitter)]) * 2 * math.pi / n
        r = 0.5 + 0.5 * jitter[(k + 1) % len(jitter)]
        pts.append(
            [lon + dlon * r * math.cos(a), max(-90.0, min(90.0, lat + dlat * r * math.sin(a)))]
        )
    return [*pts, pts[0]]


@st.composite
def fences_and_points(draw: st.DrawFn) -> tuple[list[Geofence], np.ndarray, np.ndarray]:
    place = draw(st.sampled_from(["city", "antimeridian", "north", "south"]))
    if place == "city":
        lat0, lon0 = draw(st.floats(-60, 60)), draw(st.floats(-170, 170))
    elif place == "antimeridian":
        lat0, lon0 = draw(st.floats(-60, 60)), draw(st.sampled_from([179.999, -179.999]))
    else:
        lat0 = draw(st.floats(85, 89.9)) * (1 if place == "north" else -1)
        lon0 = draw(st.floats(-180, 180))
    jit = draw(st.lists(st.floats(0, 1), min_size=3, max_size=8))
    fences: list[Geofence] = []
    n = draw(st.integers(1, 6))
    for i in range(n):
        lat = lat0 + draw(st.floats(-0.01, 0.01))
        lon = lon0 + draw(st.floats(-0.01, 0.01)) / max(0.05, math.cos(math.radians(lat)))
        lon = (lon + 180) % 360 - 180
        lat = max(-89.97, min(89.97, lat))
        size = draw(st.sampled_from([5.0, 30.0, 150.0, 800.0, 2500.0]))
        if place in ("north", "south"):
            size = min(size, 800.0)  # keeps the test fast: lon/lat cells fold near a pole
        kind = draw(st.sampled_from(["circle", "polygon", "hole", "multi"]))
        fid = f"f{i}"
        span = size / (M_PER_DEG * math.cos(math.radians(lat)))
        if kind == "circle":
            fences.append(_feature(fid, {"type": "Point", "coordinates": [lon, lat]}, size))
        elif abs(lon) + span >= 179.99 and place == "antimeridian":
            # Straddles the antimeridian: split into two parts, as RFC 7946 requires.
            dlat = size / M_PER_DEG / 2
            east = [
                [180 - span / 2, lat - dlat],
                [180, lat - dlat],
                [180, lat + dlat],
                [180 - span / 2, lat + dlat],
                [180 - span / 2, lat - dlat],
            ]
            west = [
                [-180, lat - dlat],
                [-180 + span / 3, lat - dlat],
                [-180 + span / 3, lat + dlat],
                [-180, lat + dlat],
                [-180, lat - dlat],
            ]
            geom = {"type": "MultiPolygon", "coordinates": [[east], [west]]}
            fences.append(_feature(fid, geom))
        else:
            nv = draw(st.integers(5 if kind == "hole" else 3, 9))
            if abs(lon) + span >= 179.9999:
                lon = math.copysign(179.9999 - span * 1.01, lon)
            outer = _star(lat, lon, size, nv, jit)
            if kind == "polygon":
                geom = {"type": "Polygon", "coordinates": [outer]}
            elif kind == "hole":
                hole = _star(lat, lon, size * 0.2, 4, [0.1, 0.1, 0.1])
                geom = {"type": "Polygon", "coordinates": [outer, hole[::-1]]}
            else:
                off = 2.5 * size / M_PER_DEG
                other = _star(
                    min(89.97, lat + off) if lat < 80 else lat - off, lon, size / 2, 4, jit
                )
                geom = {"type": "MultiPolygon", "coordinates": [[outer], [other]]}
            fences.append(_feature(fid, geom))
    # Points: vertices (exactly on the boundary), jittered vertices, spots around each fence.
    lats: list[float] = [90.0, -90.0, lat0, lat0]
    lons: list[float] = [180.0, -180.0, 180.0, -180.0]
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    for f in fences:
        if f.radius_m is not None:
            lon_c, lat_c = f.geometry["coordinates"]
            b = rng.uniform(0, 2 * math.pi, 60)
            r = f.radius_m * rng.choice([0.0, 0.5, 0.999999, 1.0, 1.000001, 1.3], 60)
            la, lo = _destination(lat_c, lon_c, b, r)
            lats += la.tolist()
            lons += lo.tolist()
        else:
            xy = shapely.get_coordinates(f.shape)
            noise = rng.choice([0.0, 1e-9, 1e-7, 1e-5, 1e-4], (len(xy), 2)) * rng.normal(
                size=(len(xy), 2)
            )
            pts = np.vstack([xy, xy + noise, (xy + np.roll(xy, 1, axis=0)) / 2])
            x0, y0, x1, y1 = shapely.bounds(f.shape)
            box = np.column_stack([rng.uniform(x0, x1, 60), rng.uniform(y0, y1, 60)])
            pts = np.vstack([pts, box])
            lons += np.clip(pts[:, 0], -180, 180).tolist()
            lats += np.clip(pts[:, 1], -90, 90).tolist()
    return fences, np.array(lats), np.array(lons)


def _destination(
    lat: float, lon: float, bearing: np.ndarray, dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    p1, l1, d = math.radians(lat), math.radians(lon), dist / 6_371_008.8
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(bearing))
    l2 = l1 + np.arctan2(
        np.sin(bearing) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2)
    )
    return np.degrees(p2), (np.degrees(l2) + 180) % 360 - 180


def brute(
    fences: list[Geofence], lat: np.ndarray, lon: np.ndarray
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(pairs inside, pairs too close to a circle to call)."""
    inside: set[tuple[int, int]] = set()
    ties: set[tuple[int, int]] = set()
    for j, f in enumerate(fences):
        if f.radius_m is not None:
            lon_c, lat_c = f.geometry["coordinates"]
            d = haversine_m_vec(lat, lon, np.full(lat.size, lat_c), np.full(lat.size, lon_c))
            hit = np.flatnonzero(d <= f.radius_m)
            ties.update((int(p), j) for p in np.flatnonzero(np.abs(d - f.radius_m) < TIE_M))
        else:
            hit = np.flatnonzero(shapely.intersects_xy(f.shape, lon, lat))
        inside.update((int(p), j) for p in hit)
    return inside, ties


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fences_and_points(), st.sampled_from([10, 11, 12]))
def test_match_equals_brute_force(
    case: tuple[list[Geofence], np.ndarray, np.ndarray], res: int
) -> None:
    fences, lat, lon = case
    index = FenceIndex.build(fences, res)
    m = index.match(lat, lon)
    got = set(zip(m.ping_idx.tolist(), m.fence_idx.tolist(), strict=True))
    want, ties = brute(fences, lat, lon)
    assert not (want - got - ties), "false negatives"
    assert not (got - want - ties), "false positives"
    assert np.all(np.diff(m.ping_idx) >= 0)
    assert np.all(m.depth_m >= 0)
    # depth_m: sign agrees with containment, for matched and unmatched pairs alike.
    pairs = np.array(sorted(want | got), dtype=np.int64).reshape(-1, 2)
    outside = np.array(
        [(p, j) for p in range(0, lat.size, 7) for j in range(len(fences)) if (p, j) not in want],
        dtype=np.int64,
    ).reshape(-1, 2)
    for arr, sign in ((pairs, 1.0), (outside, -1.0)):
        if not arr.size:
            continue
        d = index.depth_m(arr[:, 1].astype(np.int32), lat[arr[:, 0]], lon[arr[:, 0]])
        tie = np.array([(int(p), int(j)) in ties for p, j in arr])
        assert np.all((sign * d >= 0) | tie)


@settings(max_examples=15, deadline=None)
@given(st.floats(-89.9, 89.9), st.floats(-180, 180), st.floats(1, 2000), st.integers(0, 2**31))
def test_circle_depth_is_radius_minus_distance(lat: float, lon: float, r: float, seed: int) -> None:
    f = _feature("c", {"type": "Point", "coordinates": [lon, lat]}, r)
    index = FenceIndex.build([f])
    rng = np.random.default_rng(seed)
    plat, plon = _destination(lat, lon, rng.uniform(0, 6.3, 50), rng.uniform(0, 2 * r, 50))
    d = index.depth_m(np.zeros(50, np.int32), plat, plon)
    want = [r - haversine_m(lat, lon, a, b) for a, b in zip(plat, plon, strict=True)]
    assert np.allclose(d, want, atol=1e-6)


def test_polygon_depth_matches_sampled_boundary() -> None:
    rng = np.random.default_rng(3)
    f = _feature(
        "p", {"type": "Polygon", "coordinates": [_star(48.85, 2.35, 300, 7, [0.3, 0.7, 0.1])]}
    )
    index = FenceIndex.build([f])
    x0, y0, x1, y1 = shapely.bounds(f.shape)
    lon, lat = rng.uniform(x0, x1, 300), rng.uniform(y0, y1, 300)
    d = index.depth_m(np.zeros(300, np.int32), lat, lon)
    edge = shapely.get_coordinates(shapely.segmentize(f.shape.exterior, 1e-6))
    for k in range(0, 300, 10):
        true = haversine_m_vec(
            np.full(len(edge), lat[k]), np.full(len(edge), lon[k]), edge[:, 1], edge[:, 0]
        ).min()
        assert abs(abs(d[k]) - true) < 0.002 * true + 0.2
        assert (d[k] >= 0) == shapely.intersects_xy(f.shape, lon[k], lat[k])


def test_empty_index() -> None:
    index = FenceIndex.build([])
    assert len(index) == 0
    m = index.match(np.array([48.8, 90.0]), np.array([2.3, 180.0]))
    assert m.ping_idx.size == 0 and m.fence_idx.size == 0 and m.depth_m.size == 0
    assert index.position("x") is None


def test_bad_points_do_not_crash() -> None:
    f = _feature("c", {"type": "Point", "coordinates": [179.9999, 89.9]}, 3000)
    index = FenceIndex.build([f])
    lat = np.array([90.0, -90.0, np.nan, 95.0, 89.9, 89.9])
    lon = np.array([180.0, -180.0, 0.0, 0.0, 540.0 - 0.0001, -180.0])
    m = index.match(lat, lon)
    assert set(m.ping_idx.tolist()) == {4, 5}
    assert index.position("c") == 0


@pytest.mark.parametrize("res", [11, 12])
def test_huge_fence_stays_small(res: int) -> None:
    """A 25 km² fence: interior cells are compacted, the table stays proportional to the
    boundary, not the area."""
    f = _feature("z", {"type": "Point", "coordinates": [2.35, 48.85]}, 2800)
    index = FenceIndex.build([f], res)
    assert index.cover_size < 20_000
    lat, lon = _destination(48.85, 2.35, np.linspace(0, 6.28, 400), np.linspace(0, 3000, 400))
    m = index.match(lat, lon)
    d = haversine_m_vec(lat, lon, np.full(400, 48.85), np.full(400, 2.35))
    assert set(m.ping_idx.tolist()) == set(np.flatnonzero(d <= 2800).tolist())


@pytest.mark.parametrize(
    ("lat0", "lon0"), [(48.85, 2.35), (-33.9, 151.2), (10.0, 179.99), (79.0, 20.0)]
)
def test_raster_settles_points_as_h3_would(lat0: float, lon0: float) -> None:
    """The raster's shortcut (one cell, or a two-cell split by the shared edge's plane) gives
    the same cover segment as computing the point's H3 cell, point by point."""
    from geofences.h3cells import latlng_to_cells
    from geofences.prefilter import EMPTY, NEEDS_H3

    rng = np.random.default_rng(7)
    fences = []
    for i in range(12):
        lat = lat0 + rng.uniform(-0.005, 0.005)
        lon = lon0 + rng.uniform(-0.005, 0.005)
        geom = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        fences.append(_feature(f"c{i}", geom, float(rng.uniform(30, 300))))
    index = FenceIndex.build(fences)
    lat = lat0 + rng.uniform(-0.01, 0.01, 100_000)
    lon = np.clip(lon0 + rng.uniform(-0.01, 0.01, 100_000), -180, 180)
    code = index._raster.codes(lat, lon)
    settled = code != NEEDS_H3
    assert settled.mean() > 0.5
    via_h3 = index._segment_of(latlng_to_cells(lat, lon, index.resolution))
    assert np.array_equal(code[settled], via_h3[settled])
    assert (via_h3[code == EMPTY] == EMPTY).all()
