"""A lon/lat raster in front of H3: for every small raster cell near a fence, the cover segment
of the H3 cell that holds it, so most points never compute an H3 index.

Codes per raster cell: EMPTY (no fence near: two floor()s settle the point), a slot (the
rectangle lies inside one point-resolution H3 cell; `slot_seg` names its segment), a two-cell
split (one dot product with the shared edge's plane picks the cell, see split.py), or NEEDS_H3
(near an H3 vertex, near a pole, or only under coarse interior cells). H3 cells are spherically
convex, so a rectangle whose four corners fall in one cell lies in it, but for its parallels,
which bulge off the geodesic by L² tan(lat) / 8R: micrometres here, which the cover's
centimetre slack already absorbs.

The cells are at most half an H3 edge (else none lies in one H3 cell and none settles), kept
only where fences are: one dense window, or 8 x 8 tiles found through a directory, so memory
follows the ground the fences cover, not their bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from geofences.geodesy import EARTH_RADIUS_M
from geofences.h3cells import M_PER_DEG, latlng_to_cells, unit_vectors
from geofences.split import split_cells

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
I32 = NDArray[np.int32]

EMPTY = -1  # no fence can hold the point
NEEDS_H3 = -2  # compute the point's H3 cell and search the cover
_SPLIT = -3  # codes <= -3: a two-cell rectangle, pair -3 - code (see split.py)
_TILE = 3  # 8 x 8 raster cells per tile: at city density 61% full (16 x 16: 43%)
_MASK = (1 << _TILE) - 1
_BUDGET = 1 << 23  # raster cells finer than needed to settle pings: a luxury up to 32 MB
_MAX_CELLS = 1 << 26  # cells of half an H3 edge (that settle pings) up to 256 MB of codes
_MAX_DENSE = 1 << 24  # a dense window up to 64 MB and 1/16 full; tiles otherwise
_MAX_DIR = 1 << 24  # tile directory entries (64 MB) over the tiles' bounding box...
_DIR_SPARSE = 16  # ...and at most this many per tile (far-apart cities: a binary search)
_CHUNK = 1 << 22
_PER_EDGE = 4.0  # raster cells per H3 edge length: ~90% of them then skip H3
_POLAR = 80.0  # beyond, a degree of longitude is short and rasters bloat: latitude strips


class Raster:
    def __init__(
        self, boxes: Floats, edge_m: float, res: int, segment_of: Callable[[Ints], I32]
    ) -> None:
        # About 4 raster cells per H3 edge: ~2/3 lie in one H3 cell, ~1/4 in two. Coarser when
        # the fences cover so much ground that the raster would pass its budget, but not past
        # half an H3 edge (cells that still settle pings) while the cells the fences cover fit
        # in _MAX_CELLS: memory then grows with the ground covered, as the fence count does.
        k = min(18, max(6, round(math.log2(_PER_EDGE * M_PER_DEG / edge_m))))
        k_settle = min(k, max(6, math.ceil(math.log2(2.0 * M_PER_DEG / edge_m))))
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        fine = b[:, 4] > 0
        while True:
            self.k = k
            self.scale = float(1 << k)
            self.ni, self.nj = int(180 * self.scale), int(360 * self.scale)
            i0, i1 = self._row(b[:, 1]), self._row(b[:, 3])
            j0, j1 = self._col(b[:, 0]), self._col(b[:, 2])
            count = (i1 - i0 + 1) * (j1 - j0 + 1)
            lat_max = np.maximum(np.abs(b[:, 1]), np.abs(b[:, 3]))
            wide = (count > _BUDGET) | (lat_max > _POLAR)
            budget = _BUDGET if k > k_settle else _MAX_CELLS
            if k > 6 and int(count[~wide].sum()) > 8 * budget:
                k -= 1  # hopeless even before de-duplication: skip the expansion
                continue
            keys = _cells(i0[~wide], i1[~wide], j0[~wide], j1[~wide], count[~wide], self.nj)
            if keys.size <= budget or k <= 6:
                break
            k -= 1
        self.strips = _merge(b[wide][:, [1, 3]])
        self.res, self.edge_m = res, edge_m
        # Raster cells only under coarse (interior) cover cells stay NEEDS_H3: settling them
        # would cost build time in proportion to the area of big fences, for few pings.
        f = fine & ~wide
        if not self.settles:
            f[:] = False
        near = _cells(i0[f], i1[f], j0[f], j1[f], count[f], self.nj)
        self.normals: Floats = np.empty((0, 3))
        self.pair_cells: Ints = np.empty((0, 2), np.int64)
        self.slot_cell: Ints = np.empty(0, np.int64)
        self.seg_a = self.seg_b = self.slot_seg = np.empty(0, np.int32)
        codes = np.full(keys.size, NEEDS_H3, np.int32)
        codes[np.searchsorted(keys, near)] = self.settle(near, segment_of)
        self._layout(keys, codes)

    @property
    def settles(self) -> bool:
        """False when raster cells are too coarse to fit inside H3 cells: all stay NEEDS_H3."""
        return M_PER_DEG / self.scale <= self.edge_m / 2

    def _layout(self, keys: Ints, codes: I32) -> None:
        """Lay sorted raster keys and their codes out as one dense window or as tiles."""
        i, j = keys // self.nj, keys % self.nj
        self.dense = keys.size > 0 and (
            (int(i.max() - i.min()) + 1) * (int(j.max() - j.min()) + 1)
            <= min(_MAX_DENSE, 16 * keys.size)  # dense only when not mostly empty
        )
        if self.dense:
            self.i0, self.j0 = int(i.min()), int(j.min())
            self.h, self.w = int(i.max()) + 1 - self.i0, int(j.max()) + 1 - self.j0
            grid = np.full(self.h * self.w + 1, EMPTY, np.int32)  # last slot: outside
            grid[(i - self.i0) * self.w + (j - self.j0)] = codes
        else:
            self.tj = self.nj >> _TILE
            tile = (i >> _TILE) * self.tj + (j >> _TILE)
            self.tiles, inv = np.unique(tile, return_inverse=True)
            grid = np.full((self.tiles.size + 1, 1 << (2 * _TILE)), EMPTY, np.int32)
            grid[inv, ((i & _MASK) << _TILE) | (j & _MASK)] = codes
            self.index_tiles()
        self.grid = grid.ravel()
        self.grid.flags.writeable = False

    def index_tiles(self) -> None:
        """The directory of the tiles: a dense grid of tile rows over their bounding box (one
        gather per point instead of a binary search), when not too sparse; else none."""
        ti, tj = self.tiles // self.tj, self.tiles % self.tj
        self.tdir: I32 | None = None
        if self.tiles.size == 0:
            return
        self.ti0, self.tj0 = int(ti.min()), int(tj.min())
        self.th, self.tw = int(ti.max()) + 1 - self.ti0, int(tj.max()) + 1 - self.tj0
        if self.th * self.tw > min(_MAX_DIR, _DIR_SPARSE * self.tiles.size):
            return
        tdir = np.full(self.th * self.tw + 1, self.tiles.size, np.int32)  # last: no tile
        tdir[(ti - self.ti0) * self.tw + (tj - self.tj0)] = np.arange(self.tiles.size)
        tdir.flags.writeable = False
        self.tdir = tdir

    def tile_rows(self, ti: Ints, tj: Ints) -> Ints:
        """Grid row of each tile (tile row, tile column); the empty last row for none."""
        n = self.tiles.size
        if self.tdir is not None:
            a, b = ti - self.ti0, tj - self.tj0
            inside = (a >= 0) & (a < self.th) & (b >= 0) & (b < self.tw)
            flat = np.where(inside, a * self.tw + b, self.th * self.tw)
            return self.tdir[flat].astype(np.int64)
        tile = ti * self.tj + tj
        t = np.minimum(np.searchsorted(self.tiles, tile), n - 1)
        out: Ints = np.where(self.tiles[t] == tile, t, n)
        return out

    def _row(self, lat: Floats) -> Ints:
        return np.clip(np.floor((lat + 90.0) * self.scale), 0, self.ni - 1).astype(np.int64)

    def _col(self, lon: Floats) -> Ints:
        return np.clip(np.floor((lon + 180.0) * self.scale), 0, self.nj - 1).astype(np.int64)

    def settle(self, keys: Ints, segment_of: Callable[[Ints], I32]) -> I32:
        """Codes of the raster cells `keys`, adding their slots and split pairs to the raster's
        tables (new arrays: a raster copied for an edit shares nothing it changes). In chunks,
        so the corners' temporaries stay bounded (a slot or pair met in two is kept twice)."""
        out = np.empty(keys.size, np.int32)
        for at in range(0, keys.size, _CHUNK):
            part = slice(at, at + _CHUNK)
            out[part], (slot_cell, slot_seg), pair_cells, normals = self._codes(
                keys[part], segment_of
            )
            seg_a, seg_b = _pair_segments(pair_cells, segment_of)
            self.slot_cell = np.concatenate([self.slot_cell, slot_cell])
            self.slot_seg = np.concatenate([self.slot_seg, slot_seg])
            self.pair_cells = np.concatenate([self.pair_cells, pair_cells])
            self.normals = np.concatenate([self.normals, normals])
            self.seg_a = np.concatenate([self.seg_a, seg_a])
            self.seg_b = np.concatenate([self.seg_b, seg_b])
        return out

    def _codes(
        self, keys: Ints, segment_of: Callable[[Ints], I32]
    ) -> tuple[I32, tuple[Ints, I32], Ints, Floats]:
        """Per raster cell: a slot, a split or NEEDS_H3, from the H3 cells of its corners; and
        the H3 cell and segment of each new slot, the (A, B) H3 cells and the normals of the
        new split pairs, both numbered after the raster's own."""
        i, j = keys // self.nj, keys % self.nj
        s, res = self.scale, self.res
        sane = np.abs(i / s - 90.0) < _POLAR
        normals: Floats = np.empty((0, 3))
        cells: Ints = np.empty((0, 2), np.int64)
        if keys.size == 0:
            return (
                np.empty(0, np.int32),
                (np.empty(0, np.int64), np.empty(0, np.int32)),
                cells,
                normals,
            )
        ia, ja = int(i.min()), int(j.min())
        h, w = int(i.max()) + 2 - ia, int(j.max()) + 2 - ja  # corner grid of the window
        if h * w <= min(_MAX_DENSE, 2 * keys.size):
            # Dense: every corner of the window, no de-duplication needed.
            ci, cj = np.divmod(np.arange(h * w, dtype=np.int64), w)
            grid = latlng_to_cells((ci + ia) / s - 90.0, (cj + ja) / s - 180.0, res)
            base = (i - ia) * w + (j - ja)
            q = np.stack([grid[base + off] for off in (0, 1, w, w + 1)], axis=1)
        else:
            stride = self.nj + 1
            c00 = i * stride + j  # corner keys: corners are shared by up to four raster cells
            corners = [c00, c00 + 1, c00 + stride, c00 + stride + 1]
            uniq = _unique(np.concatenate(corners))
            cells = latlng_to_cells(uniq // stride / s - 90.0, uniq % stride / s - 180.0, res)
            q = np.stack([cells[np.searchsorted(uniq, c)] for c in corners], axis=1)
        first = q[:, 0]
        pure = sane & (q == first[:, None]).all(axis=1)
        out = np.full(keys.size, NEEDS_H3, np.int32)
        # A code names a slot (its H3 cell, kept), not a segment: an edit that renumbers the
        # segments then renumbers the slots' table, not every raster cell.
        slot_cell, inv = np.unique(first[pure], return_inverse=True)
        slot0 = self.slot_cell.size
        slot_seg = segment_of(slot_cell)
        out[pure] = np.where(slot_seg[inv] != EMPTY, slot0 + inv, EMPTY)
        qs = np.sort(q, axis=1)
        two = sane & ((qs[:, 1:] != qs[:, :-1]).sum(axis=1) == 1)
        t = np.flatnonzero(two)
        if t.size:
            w_m = M_PER_DEG / s
            bulge = w_m * w_m * math.tan(math.radians(_POLAR)) / (8.0 * EARTH_RADIUS_M)
            margin = (bulge + 1e-3) / EARTH_RADIUS_M
            ok, pair, normals, cell_a, cell_b = split_cells(
                i[t] / s - 90.0, j[t] / s - 180.0, 1.0 / s, q[t], res, margin
            )
            cells = np.column_stack([cell_a, cell_b])
            out[t[ok]] = _SPLIT - self.normals.shape[0] - pair[ok].astype(np.int32)
        return out, (slot_cell, slot_seg), cells, normals

    def codes(self, lat: Floats, lon: Floats) -> I32:
        """EMPTY, NEEDS_H3 or a cover segment for each (valid) point."""
        i, j = self._row(lat), self._col(lon)
        if self.dense:
            ii, jj = i - self.i0, j - self.j0
            inside = (ii >= 0) & (ii < self.h) & (jj >= 0) & (jj < self.w)
            flat = np.where(inside, ii * self.w + jj, self.h * self.w)
            out: I32 = self.grid[flat]
        elif self.tiles.size:
            row = self.tile_rows(i >> _TILE, j >> _TILE)
            out = self.grid[(row << (2 * _TILE)) | ((i & _MASK) << _TILE) | (j & _MASK)]
        else:
            out = np.full(lat.size, EMPTY, np.int32)
        for lo, hi in self.strips:
            band = (lat >= lo) & (lat <= hi) & (out == EMPTY)
            out[band] = NEEDS_H3
        slot = np.flatnonzero(out >= 0)
        out[slot] = self.slot_seg[out[slot]]
        split = np.flatnonzero(out <= _SPLIT)
        if split.size:
            k = _SPLIT - out[split]
            p = unit_vectors(lat[split], lon[split])
            side = np.einsum("nj,nj->n", p, self.normals[k]) >= 0.0
            out[split] = np.where(side, self.seg_a[k], self.seg_b[k])
        return out


def _pair_segments(cells: Ints, segment_of: Callable[[Ints], I32]) -> tuple[I32, I32]:
    """Cover segments of the two H3 cells of each split pair (kept, so an edit can renumber)."""
    seg = segment_of(cells.ravel()).reshape(-1, 2)
    return np.ascontiguousarray(seg[:, 0]), np.ascontiguousarray(seg[:, 1])


def _cells(i0: Ints, i1: Ints, j0: Ints, j1: Ints, count: Ints, nj: int) -> Ints:
    """Distinct raster cell keys (i * nj + j) covered by a batch of boxes, in chunks."""
    keys: list[Ints] = []
    csum = np.cumsum(count)
    start = 0
    while start < count.size:
        base = int(csum[start - 1]) if start else 0
        stop = max(int(np.searchsorted(csum, base + _CHUNK, "right")), start + 1)
        sl = slice(start, stop)
        keys.append(_unique(_expand(i0[sl], i1[sl], j0[sl], j1[sl], nj)))
        start = stop
    return _unique(np.concatenate(keys)) if keys else np.empty(0, np.int64)


def _unique(a: Ints) -> Ints:
    # np.unique's hash path is slow on millions of int64s; sorting is 5-10x faster here.
    a = np.sort(a)
    out: Ints = a[np.concatenate([[True], a[1:] != a[:-1]])] if a.size else a
    return out


def _expand(i0: Ints, i1: Ints, j0: Ints, j1: Ints, nj: int) -> Ints:
    h, w = i1 - i0 + 1, j1 - j0 + 1
    n = h * w
    box = np.repeat(np.arange(n.size), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    wb = w[box]
    out: Ints = (i0[box] + k // wb) * nj + (j0[box] + k % wb)
    return out


def _merge(strips: Floats) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(map(tuple, strips.tolist())):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
