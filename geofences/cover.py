"""The H3 cover of a set of fences: cells wholly inside a fence ("interior") and cells that may
hold both inside and outside points ("boundary").

The cover is built top-down, all fences at once, one resolution level per pass: a cell is
dropped when no point of it can be in the fence, kept as interior when every point of it is,
and otherwise split into its children until the point resolution is reached. A coarse cell
stands for the points whose *point-resolution* cell descends from it (index digits), a region
a little larger than its hexagon: that slack is added before any decision, so the cover is
conservative (no false negatives) and interior cells are truly interior (no false positives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h3.api.basic_int as h3i
import numpy as np
import shapely
from numpy.typing import NDArray

from geofences.geodesy import EARTH_RADIUS_M, haversine_m_vec
from geofences.h3cells import (
    EPS_M,
    M_PER_DEG,
    CellShapes,
    latlng_to_cells,
    parent_of,
    unit_vectors,
)
from geofences.model import Geofence

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

_BLOCK = 1 << 18
_EDGE_M = [h3i.average_hexagon_edge_length(r, "m") for r in range(16)]


@dataclass(frozen=True, slots=True)
class Cover:
    cells: Ints  # H3 index of each entry (mixed resolutions)
    fence: NDArray[np.int32]  # fence position of each entry
    interior: NDArray[np.bool_]
    boxes: Floats  # (n, 5) lon/lat boxes holding every entry's region + "at point res" flag


@dataclass(frozen=True, slots=True)
class FenceArrays:
    """Column view of the fences, the shape the vectorized tests want."""

    is_circle: NDArray[np.bool_]
    lat: Floats  # circle centre (NaN for polygons)
    lon: Floats
    radius: Floats
    shapes: NDArray[np.object_]  # prepared lon/lat shape (None for circles)
    boundaries: NDArray[np.object_]  # prepared boundary of the shape (None for circles)

    @classmethod
    def of(cls, fences: Sequence[Geofence]) -> FenceArrays:
        n = len(fences)
        is_circle = np.array([f.radius_m is not None for f in fences], dtype=bool)
        lat, lon, radius = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        shapes = np.empty(n, dtype=object)
        for i, f in enumerate(fences):
            if f.radius_m is not None:
                lon[i], lat[i] = f.geometry["coordinates"][:2]
                radius[i] = f.radius_m
            else:
                shapes[i] = f.shape
        boundaries = np.empty(n, dtype=object)
        if (~is_circle).any():
            shapely.prepare(shapes[~is_circle])
            boundaries[~is_circle] = shapely.boundary(shapes[~is_circle])
            shapely.prepare(boundaries[~is_circle])
        return cls(is_circle, lat, lon, radius, shapes, boundaries)


def build_cover(fa: FenceArrays, res: int) -> Cover:
    work_f, work_c = _seed_cells(fa, res)
    out_c: list[Ints] = []
    out_f: list[NDArray[np.int32]] = []
    out_in: list[NDArray[np.bool_]] = []
    out_box: list[Floats] = []
    while work_c.size:
        uniq, inv = np.unique(work_c, return_inverse=True)
        cs = CellShapes(uniq, res)
        status = _classify(fa, cs, work_f, inv)  # 0 out, 1 interior, 2 boundary
        keep = (status == 1) | ((status == 2) & (cs.res[inv] >= res))
        out_c.append(work_c[keep])
        out_f.append(work_f[keep])
        out_in.append(status[keep] == 1)
        rows = np.unique(inv[keep])
        if rows.size:
            out_box.append(cs.boxes(rows))
        split = (status == 2) & ~keep
        work_f, work_c = _children(work_f[split], work_c[split])
    if not out_c:
        return Cover(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, bool), _nobox())
    cells, fence, interior = _compact(
        np.concatenate(out_c), np.concatenate(out_f), np.concatenate(out_in)
    )
    boxes = np.concatenate(out_box) if out_box else _nobox()
    return Cover(cells, fence, interior, boxes)


def _nobox() -> Floats:
    return np.empty((0, 5))


def _classify(fa: FenceArrays, cs: CellShapes, f: NDArray[np.int32], u: Ints) -> NDArray[np.int8]:
    status = np.zeros(f.size, np.int8)
    circ = fa.is_circle[f]
    if circ.any():
        fc, uc = f[circ], u[circ]
        rho, slack = fa.radius[fc], cs.slack_m[uc]
        to_centre = haversine_m_vec(fa.lat[fc], fa.lon[fc], cs.clat[uc], cs.clon[uc])
        # The farthest point of a spherically convex cell from any point is a vertex. Chords
        # between unit vectors rank distances like arcs and need no trig per vertex.
        units = cs.vertex_units()[:, : int(cs.nv.max())]
        chord2 = np.empty(fc.size)
        for a in range(0, fc.size, _BLOCK):  # bounds the (pairs, vertices, 3) temporaries
            p = unit_vectors(fa.lat[fc[a : a + _BLOCK]], fa.lon[fc[a : a + _BLOCK]])
            d = units[uc[a : a + _BLOCK]] - p[:, None, :]
            chord2[a : a + _BLOCK] = np.nanmax(np.einsum("ijk,ijk->ij", d, d), axis=1)
        far = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(np.sqrt(chord2) * 0.5, 1.0))
        near_ok = to_centre - cs.circumradius[uc] - slack <= rho + EPS_M
        inside = far + slack + EPS_M <= rho
        status[circ] = np.where(inside, 1, np.where(near_ok, 2, 0))
    poly = ~circ
    if poly.any():
        geoms, d_deg = cs.lonlat_geoms()
        fp, up = f[poly], u[poly]
        g, d = geoms[up], d_deg[up]
        near = shapely.dwithin(fa.shapes[fp], g, d)
        inside = near & shapely.contains(fa.shapes[fp], g)
        inside[inside] = ~shapely.dwithin(fa.boundaries[fp[inside]], g[inside], d[inside])
        status[poly] = np.where(inside, 1, np.where(near, 2, 0))
    return status


def _children(f: NDArray[np.int32], c: Ints) -> tuple[NDArray[np.int32], Ints]:
    if c.size == 0:
        return f, c
    uniq, inv = np.unique(c, return_inverse=True)
    kids = [h3i.cell_to_children(x) for x in uniq.tolist()]
    counts = np.array([len(k) for k in kids], np.int64)
    flat = np.fromiter((x for k in kids for x in k), np.int64, int(counts.sum()))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[inv]
    pair = np.repeat(np.arange(c.size), n)
    offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return f[pair], flat[starts[inv][pair] + offs]


def _seed_cells(fa: FenceArrays, res: int) -> tuple[NDArray[np.int32], Ints]:
    """Per fence, the cells at a starting resolution that may hold any of its points: a disk
    around each part grown until its outer ring is provably clear of the part."""
    circles = np.flatnonzero(fa.is_circle)
    polys = np.flatnonzero(~fa.is_circle)
    parts, part_of = shapely.get_parts(fa.shapes[polys], return_index=True)
    plat, plon, preach = _part_caps(parts)
    owner = np.concatenate([circles, polys[part_of]]).astype(np.int32)
    lat = np.concatenate([fa.lat[circles], plat])
    lon = np.concatenate([fa.lon[circles], plon])
    reach = np.concatenate([fa.radius[circles], preach])
    r0 = np.array([_start_res(float(d), res) for d in reach], np.int64)
    c0 = np.empty(owner.size, np.int64)
    for r in np.unique(r0).tolist():
        sel = np.flatnonzero(r0 == r)
        c0[sel] = latlng_to_cells(lat[sel], lon[sel], r)
    radius = _clear_radius(c0, lat, lon, reach, res)
    disks = [h3i.grid_disk(c, k) for c, k in zip(c0.tolist(), radius.tolist(), strict=True)]
    sizes = np.array([len(d) for d in disks], np.int64)
    f_arr = np.repeat(owner, sizes)
    c_arr = np.fromiter((c for d in disks for c in d), np.int64, int(sizes.sum()))
    if c_arr.size:  # parts of one fence may share seed cells
        key = np.unique(np.column_stack([f_arr.astype(np.int64), c_arr]), axis=0)
        f_arr, c_arr = key[:, 0].astype(np.int32), key[:, 1]
    return f_arr, c_arr


def _clear_radius(c0: Ints, lat: Floats, lon: Floats, reach: Floats, res: int) -> Ints:
    """Per seed, the grid radius whose disk holds every cell that may meet the seed's cap.
    Cells meeting a cap are connected around the cell of its centre, so once ring k holds none
    of them, disk k - 1 holds them all."""
    out = np.zeros(c0.size, np.int64)
    pending = np.arange(c0.size)
    k = 1
    while pending.size:
        rings = [h3i.grid_ring(c, k) for c in c0[pending].tolist()]
        sizes = np.array([len(r) for r in rings], np.int64)
        flat = np.fromiter((c for r in rings for c in r), np.int64, int(sizes.sum()))
        uniq, inv = np.unique(flat, return_inverse=True)
        cs = CellShapes(uniq, res)
        who = np.repeat(pending, sizes)
        gap = haversine_m_vec(lat[who], lon[who], cs.clat[inv], cs.clon[inv])
        gap -= cs.circumradius[inv] + cs.slack_m[inv]
        meets = gap <= reach[who] + EPS_M
        busy = np.bincount(np.repeat(np.arange(pending.size), sizes), meets, pending.size) > 0
        out[pending[~busy]] = k - 1
        pending = pending[busy]
        k += 1
    return out


def _part_caps(parts: NDArray[np.object_]) -> tuple[Floats, Floats, Floats]:
    """Caps (centre lat, lon, radius m) holding lon/lat polygon parts, edges included."""
    if parts.size == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    b = shapely.bounds(parts)
    clat, clon = (b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2
    step = np.maximum((b[:, 2] - b[:, 0] + b[:, 3] - b[:, 1]) / 64.0, 1e-7)
    rings = shapely.segmentize(shapely.boundary(parts), step)
    pts, of = shapely.get_coordinates(rings, return_index=True)
    d = haversine_m_vec(clat[of], clon[of], pts[:, 1], pts[:, 0])
    far = np.zeros(parts.size)
    np.maximum.at(far, of, d)
    # Between two samples the boundary is at most `step` degrees away from one of them.
    return clat, clon, far * 1.001 + step * M_PER_DEG + 1.0


def _start_res(reach_m: float, res: int) -> int:
    r = res
    while r > 0 and _EDGE_M[r] < reach_m:
        r -= 1
    return r


def _compact(
    cells: Ints, fence: NDArray[np.int32], interior: NDArray[np.bool_]
) -> tuple[Ints, NDArray[np.int32], NDArray[np.bool_]]:
    """Merge a fence's interior cells whose siblings are all interior into their parent: the
    parent's digit range is exactly its children's, so this is lossless."""
    keep_c, keep_f = [cells[~interior]], [fence[~interior]]
    ic, jf = cells[interior], fence[interior]
    res = (ic >> 52) & 0xF
    for r in range(15, 0, -1):
        at = res == r
        if not at.any():
            continue
        par = parent_of(ic[at], np.full(int(at.sum()), r - 1, np.int64))
        key = np.column_stack([jf[at].astype(np.int64), par])
        uk, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        full = cnt == 7
        for k in np.flatnonzero(cnt == 6).tolist():
            full[k] = h3i.is_pentagon(int(uk[k, 1]))
        merged = full[inv.ravel()]
        rest = ~at
        rest[np.flatnonzero(at)[~merged]] = True
        ic = np.concatenate([ic[rest], uk[full, 1]])
        jf = np.concatenate([jf[rest], uk[full, 0].astype(np.int32)])
        res = np.concatenate([res[rest], np.full(int(full.sum()), r - 1, np.int64)])
    cells_out = np.concatenate([*keep_c, ic])
    fence_out = np.concatenate([*keep_f, jf])
    interior_out = np.concatenate([np.zeros(int((~interior).sum()), bool), np.ones(ic.size, bool)])
    return cells_out, fence_out, interior_out
