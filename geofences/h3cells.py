"""H3 helpers for the cover index: vectorized point -> cell, digit ranges, and cell shapes in the
planar lon/lat space where fences live (RFC 7946), made safe at the poles and the antimeridian.
"""

from __future__ import annotations

import math
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
import shapely
from numpy.typing import NDArray

from geofences.geodesy import EARTH_RADIUS_M, haversine_m_vec, wrap_lon

try:  # h3o (Rust) through h3ronpy: ~2x faster than looping h3-py, and it releases the GIL.
    from h3ronpy.vector import coordinates_to_cells as _h3o_cells
except ImportError:  # pragma: no cover - the scalar fallback gives the same cells
    _h3o_cells = None

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
RES_SHIFT = 52
RES_MASK = np.int64(0xF << RES_SHIFT)
MAX_VERTS = 10  # a cell crossing icosahedron edges has at most 10 boundary vertices
_WORLD = shapely.box(-180.0, -90.0, 180.0, 90.0)
# Descendants of a cell (in index-digit terms) stick out of its hexagon by <= ~0.16 of its
# circumradius (measured at res 5-9, pentagons included); 0.4 leaves a 2.5x safety margin.
DESCENDANT_SLACK = 0.4
EPS_M = 0.01  # float noise of haversine and of H3's own rounding, in metres


def latlng_to_cells(lat: Floats, lon: Floats, res: int) -> Ints:
    """Cells (int64 H3 indexes) of valid points (|lat| <= 90, |lon| <= 180), vectorized."""
    if lat.size == 0:
        return np.empty(0, np.int64)
    if _h3o_cells is not None:
        out = np.asarray(_h3o_cells(lat, lon, res), dtype=np.uint64)
        return out.view(np.int64)
    f = h3i.latlng_to_cell
    return np.fromiter(
        (f(a, b, res) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.int64,
        count=lat.size,
    )


def range_key(cells: Ints) -> Ints:
    """Index key with the resolution bits cleared: a descendant's key lies in its ancestor's
    [range_lo, range_hi], so one sorted array serves every resolution at once."""
    return cells & ~RES_MASK


def range_lo(cells: Ints, res: NDArray[np.int64]) -> Ints:
    tail = (np.int64(1) << (3 * (15 - res))) - 1
    return range_key(cells) & ~tail


def resolution_of(cells: Ints) -> NDArray[np.int64]:
    return (cells >> RES_SHIFT) & 0xF


def parent_of(cells: Ints, res: NDArray[np.int64]) -> Ints:
    """Index-digit parent at `res` (< the cell's resolution): digits below become 7."""
    tail = (np.int64(1) << (3 * (15 - res))) - 1
    return ((cells & ~RES_MASK) | (res << RES_SHIFT)) | tail


class CellShapes:
    """Geometry of a batch of distinct cells, computed once and shared by every fence."""

    def __init__(self, cells: Ints, point_res: int) -> None:
        n = cells.size
        self.cells = cells
        self.point_res = point_res
        self.vlat = np.full((n, MAX_VERTS), np.nan)
        self.vlon = np.full((n, MAX_VERTS), np.nan)
        bounds = list(map(h3i.cell_to_boundary, cells.tolist()))
        self.nv = np.fromiter(map(len, bounds), np.int64, n)
        flat = np.array([p for b in bounds for p in b], dtype=np.float64).reshape(-1, 2)
        row = np.repeat(np.arange(n), self.nv)
        col = np.arange(row.size) - np.repeat(np.cumsum(self.nv) - self.nv, self.nv)
        self.vlat[row, col] = flat[:, 0]
        self.vlon[row, col] = flat[:, 1]
        self.res = resolution_of(cells)
        # Any point inside a (spherically convex) cell centres a cap holding it: the normalized
        # mean of the vertices will do, and it is cheaper than asking H3 for the centre.
        la, lo = np.radians(self.vlat), np.radians(self.vlon)
        x = np.nansum(np.cos(la) * np.cos(lo), axis=1)
        y = np.nansum(np.cos(la) * np.sin(lo), axis=1)
        z = np.nansum(np.sin(la), axis=1)
        self.clat = np.degrees(np.arctan2(z, np.hypot(x, y)))
        self.clon = np.degrees(np.arctan2(y, x))
        d = haversine_m_vec(self.clat[:, None], self.clon[:, None], self.vlat, self.vlon)
        self.circumradius = np.nanmax(d, axis=1)
        slack = np.where(self.res < point_res, DESCENDANT_SLACK * self.circumradius, 0.0)
        self.slack_m = slack + EPS_M + 1e-7 * self.circumradius
        max_lat = np.nanmax(np.abs(self.vlat), axis=1)
        # A lon/lat straight segment strays from the geodesic edge by ~ L² tan(lat) / 8R.
        tan = np.tan(np.radians(np.minimum(max_lat, 89.9999)))
        self.curve_m = self.circumradius**2 * (tan + 1.0) / (4.0 * EARTH_RADIUS_M)
        self.reach = max_lat + (self.slack_m + self.curve_m) / M_PER_DEG
        pole = np.isin(cells, np.fromiter(_pole_cells(1) | _pole_cells(-1), np.int64))
        self.band = pole | (self.reach >= 89.99)
        self._geoms: NDArray[Any] | None = None
        self._units: Floats | None = None
        self._d_deg: Floats = np.empty(0)

    def vertex_units(self) -> Floats:
        """(n, MAX_VERTS, 3) unit vectors of the vertices (NaN padded)."""
        if self._units is None:
            self._units = unit_vectors(self.vlat, self.vlon)
        return self._units

    def lonlat_geoms(self) -> tuple[NDArray[Any], Floats]:
        """Each cell as a lon/lat (Multi)Polygon and a degree-space distance covering its slack
        in metres. Built lazily: circles never need them."""
        if self._geoms is not None:
            return self._geoms, self._d_deg
        n = self.cells.size
        geoms = np.empty(n, dtype=object)
        lon = self.vlon[:, :1] + wrap_lon(self.vlon - self.vlon[:, :1])
        cos = np.cos(np.radians(np.minimum(self.reach, 89.9999)))
        d_deg = (self.slack_m + self.curve_m) / (M_PER_DEG * cos) * 1.05
        minlon, maxlon = np.nanmin(lon, axis=1), np.nanmax(lon, axis=1)
        wraps = (minlon - d_deg < -180.0) | (maxlon + d_deg > 180.0)
        dense = self.curve_m > 0.02 * self.circumradius
        simple = ~(self.band | wraps | dense)
        for k in np.unique(self.nv[simple]).tolist():
            sel = np.flatnonzero(simple & (self.nv == k))
            ring = np.stack([lon[sel, :k], self.vlat[sel, :k]], axis=-1)
            geoms[sel] = shapely.polygons(ring)
        for i in np.flatnonzero(~simple).tolist():
            geoms[i], d_deg[i] = self._special(i, lon[i, : self.nv[i]], float(d_deg[i]))
        shapely.prepare(geoms)
        self._geoms, self._d_deg = geoms, d_deg
        return geoms, d_deg

    def _special(self, i: int, lon: Floats, d: float) -> tuple[shapely.Geometry, float]:
        lat = self.vlat[i, : self.nv[i]]
        if self.band[i]:
            # Around a pole lon/lat shapes fold: a full band of latitudes is conservative.
            d = float(self.slack_m[i] + self.curve_m[i]) / M_PER_DEG * 1.05
            if lat.mean() > 0:
                return shapely.box(-180.0, float(lat.min()), 180.0, 90.0), d
            return shapely.box(-180.0, -90.0, 180.0, float(lat.max())), d
        curve = float(self.curve_m[i])
        if curve > 0.02 * self.circumradius[i]:
            k = min(32, math.ceil(math.sqrt(curve / (0.02 * self.circumradius[i]))))
            lat, lon = _densify(lat, lon, k)
            cos = math.cos(math.radians(min(89.9999, float(self.reach[i]))))
            d = float(self.slack_m[i] + curve / (k * k)) / (M_PER_DEG * cos) * 1.05
        poly = shapely.Polygon(np.column_stack([lon, lat]))
        if lon.min() - d < -180.0 or lon.max() + d > 180.0:
            shift = 360.0 if lon.min() - d < -180.0 else -360.0
            moved = shapely.transform(poly, lambda xy: xy + np.array([shift, 0.0]))
            poly = shapely.intersection(shapely.union(poly, moved), _WORLD)
        return poly, d

    def boxes(self, rows: NDArray[np.int64]) -> Floats:
        """Lon/lat boxes (minlon, minlat, maxlon, maxlat, fine) holding each listed cell's
        region; a cell over the antimeridian gives two boxes, one at a pole a band. `fine` is 1
        for cells at the point resolution, 0 for coarser ones."""
        geoms, d = self.lonlat_geoms()
        parts, idx = shapely.get_parts(geoms[rows], return_index=True)
        b: Floats = shapely.bounds(parts)
        pad = d[rows][idx]
        b[:, 0] -= pad
        b[:, 1] -= pad
        b[:, 2] += pad
        b[:, 3] += pad
        fine = (self.res[rows][idx] >= self.point_res).astype(np.float64)
        out: Floats = np.column_stack([b, fine])
        return out


def unit_vectors(lat: Floats, lon: Floats) -> Floats:
    """Points on the unit sphere, shape (..., 3)."""
    la, lo = np.radians(lat), np.radians(lon)
    c = np.cos(la)
    out: Floats = np.stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)], axis=-1)
    return out


_POLE_CACHE: dict[int, frozenset[int]] = {}


def _pole_cells(sign: int) -> frozenset[int]:
    """Cells containing a pole, at every resolution."""
    if sign not in _POLE_CACHE:
        lat = 90.0 * sign
        _POLE_CACHE[sign] = frozenset(h3i.latlng_to_cell(lat, 0.0, r) for r in range(16))
    return _POLE_CACHE[sign]


def _densify(lat: Floats, lon: Floats, k: int) -> tuple[Floats, Floats]:
    """Split every geodesic edge into k pieces (slerp), so straight lon/lat pieces follow it."""
    la, lo = np.radians(lat), np.radians(lon)
    v = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    w = np.roll(v, -1, axis=0)
    t = (np.arange(k) / k)[None, :, None]
    pts = (v[:, None, :] * (1 - t) + w[:, None, :] * t).reshape(-1, 3)
    pts /= np.linalg.norm(pts, axis=1)[:, None]
    out_lat = np.degrees(np.arcsin(np.clip(pts[:, 2], -1.0, 1.0)))
    out_lon = np.degrees(np.arctan2(pts[:, 1], pts[:, 0]))
    return out_lat, lon[0] + wrap_lon(out_lon - lon[0])
