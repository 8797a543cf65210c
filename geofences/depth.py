"""Distance from points to polygon fence boundaries, in metres, vectorized.

Each polygon is projected once (at index build) to an equirectangular plane at its own
reference latitude, longitude differences wrapped so the antimeridian is not a wall. A point is
projected with its fence's reference and the minimum over that fence's edges is taken in numpy:
fences have few edges, and this avoids building a shapely Point per ping.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray

from geofences.geodesy import wrap_lon
from geofences.h3cells import M_PER_DEG
from geofences.model import Geofence

Floats = NDArray[np.float64]

_CHUNK = 1 << 21  # edge evaluations per pass: bounds the temporaries (~16 MB per array)


class PolygonEdges:
    def __init__(self, fences: Sequence[Geofence]) -> None:
        n = len(fences)
        self.ref_lat = np.zeros(n)
        self.ref_lon = np.zeros(n)
        self.kx = np.zeros(n)  # metres per degree of longitude at the reference latitude
        poly = np.array([i for i, f in enumerate(fences) if f.shape is not None], np.int64)
        shapes = np.empty(poly.size, dtype=object)
        shapes[:] = [fences[i].shape for i in poly.tolist()]
        if poly.size:
            rp = shapely.point_on_surface(shapes)
            self.ref_lon[poly], self.ref_lat[poly] = shapely.get_x(rp), shapely.get_y(rp)
        self.kx = np.cos(np.radians(self.ref_lat)) * M_PER_DEG
        parts, part_of = shapely.get_parts(shapes, return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        xy, pt_ring = shapely.get_coordinates(rings, return_index=True)
        fence = poly[part_of[ring_of[pt_ring]]] if xy.size else np.empty(0, np.int64)
        wrapped = wrap_lon(xy[:, 0] - self.ref_lon[fence])
        # Parity tests in the plane are only trusted when no part lies near the wrap cut.
        far = np.zeros(n, bool)
        np.logical_or.at(far, fence, np.abs(wrapped) > 90.0)
        self.planar_ok = ~far
        x = wrapped * self.kx[fence]
        y = (xy[:, 1] - self.ref_lat[fence]) * M_PER_DEG
        # An edge joins two consecutive positions of the same ring (rings are closed).
        e = np.flatnonzero(pt_ring[1:] == pt_ring[:-1])
        self.seg = np.column_stack([x[e], y[e], x[e + 1], y[e + 1]])
        counts = np.bincount(fence[e], minlength=n).astype(np.int64)
        # Where each fence's edges start: only (ptr, count) per fence are read, so an edit can
        # append a fence's edges at the end and leave its old ones unreferenced (edit.py).
        self.ptr = np.cumsum(counts) - counts
        self.count = counts
        # The b - a terms are the same for every point: keep them.
        self.dx = self.seg[:, 2] - self.seg[:, 0]
        self.dy = self.seg[:, 3] - self.seg[:, 1]
        self.inv_len2 = 1.0 / np.maximum(self.dx**2 + self.dy**2, 1e-300)

    def put(self, slot: int, fence: Geofence) -> PolygonEdges:
        """A copy with `fence` at `slot` (== len: appended); the arrays are never mutated."""
        one = PolygonEdges([fence])
        new = copy.copy(self)
        for name in ("ref_lat", "ref_lon", "kx", "planar_ok", "count"):
            old, row = getattr(self, name), getattr(one, name)
            if slot == old.size:
                setattr(new, name, np.concatenate([old, row]))
            else:
                arr = old.copy()
                arr[slot] = row[0]
                setattr(new, name, arr)
        start = np.array([self.seg.shape[0]], np.int64)
        new.ptr = np.concatenate([self.ptr, start]) if slot == self.ptr.size else self.ptr.copy()
        new.ptr[slot] = start[0]
        new.seg = np.concatenate([self.seg, one.seg])
        new.dx = np.concatenate([self.dx, one.dx])
        new.dy = np.concatenate([self.dy, one.dy])
        new.inv_len2 = np.concatenate([self.inv_len2, one.inv_len2])
        return new

    def swap_remove(self, slot: int) -> PolygonEdges:
        """A copy without the fence at `slot`: the last fence takes its place."""
        new = copy.copy(self)
        last = self.ptr.size - 1
        for name in ("ref_lat", "ref_lon", "kx", "planar_ok", "count", "ptr"):
            arr = getattr(self, name)[:last].copy()
            if slot < last:
                arr[slot] = getattr(self, name)[last]
            setattr(new, name, arr)
        return new

    def distance_m(self, fence: NDArray[np.int32], lat: Floats, lon: Floats) -> Floats:
        """Unsigned distance from each point to its fence's boundary (polygon fences only)."""
        return self.measure(fence, lat, lon)[0]

    def measure(
        self, fence: NDArray[np.int32], lat: Floats, lon: Floats
    ) -> tuple[Floats, NDArray[np.bool_]]:
        """Distance to the boundary and ray-crossing parity (inside, unless on the boundary:
        the projection is affine per fence, so parity agrees with shapely in lon/lat for any
        point farther from the boundary than float noise; callers ask shapely for the rest)."""
        px = wrap_lon(lon - self.ref_lon[fence]) * self.kx[fence]
        py = (lat - self.ref_lat[fence]) * M_PER_DEG
        n = self.count[fence]
        dist = np.empty(fence.size)
        odd = np.empty(fence.size, bool)
        csum = np.cumsum(n)
        start = 0
        while start < fence.size:
            base = int(csum[start - 1]) if start else 0
            stop = max(int(np.searchsorted(csum, base + _CHUNK, "right")), start + 1)
            sl = slice(start, stop)
            dist[sl], odd[sl] = self._chunk(fence[sl], px[sl], py[sl])
            start = stop
        return dist, odd

    def _chunk(
        self, fence: NDArray[np.int32], px: Floats, py: Floats
    ) -> tuple[Floats, NDArray[np.bool_]]:
        n = self.count[fence]
        first = np.cumsum(n) - n
        pair = np.repeat(np.arange(fence.size), n)
        e = np.repeat(self.ptr[fence] - first, n) + np.arange(int(n.sum()))
        ax, ay, by = self.seg[e, 0], self.seg[e, 1], self.seg[e, 3]
        dx, dy = self.dx[e], self.dy[e]
        x, y = px[pair], py[pair]
        qx, qy = x - ax, y - ay
        # Ray to +x crosses the edge: it straddles the point's y, and the point is left of it.
        cross = (ay > y) != (by > y)
        cross &= ((qx * dy - qy * dx) < 0) == (dy > 0)
        odd = np.logical_xor.reduceat(cross, first)
        t = np.clip((qx * dx + qy * dy) * self.inv_len2[e], 0.0, 1.0)
        qx -= t * dx
        qy -= t * dy
        d2 = qx * qx + qy * qy
        dist: Floats = np.sqrt(np.minimum.reduceat(d2, first))
        return dist, odd
