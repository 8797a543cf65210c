"""One fence edit applied to a Raster (prefilter.py) without rebuilding it: a new Raster that
shares nothing mutable with the old one, so readers of the old index keep a consistent view.

Only raster cells under the *added* fence's cover boxes are settled again. Every other cell
keeps its code: a slot or a split pair, whose segments are renumbered through `seg_map` when
new segment bounds split theirs: the H3 cell under such a raster cell descends from no cell
of the added fence (else the cell would lie in that cell's box), so any piece of its old
segment outside the added fence's ranges holds exactly the fences its old segment held.
Removing a fence never moves a bound, so codes stay right (a segment that lost its last fence
just yields no candidates).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from geofences.prefilter import (
    _BUDGET,
    _MASK,
    _MAX_DENSE,
    _POLAR,
    _TILE,
    EMPTY,
    NEEDS_H3,
    Raster,
    _cells,
    _pair_segments,
)

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
I32 = NDArray[np.int32]

# Up to this many raster cells per edit, cells under coarse interior cover cells are settled
# too (a few ms of corner H3 cells); beyond, they become NEEDS_H3, as a full build leaves them.
_SETTLE_ALL = 1 << 16


def edited(
    raster: Raster,
    boxes: Floats,
    seg_map: I32 | None,
    split: NDArray[np.bool_] | None,
    segment_of: Callable[[Ints], I32],
) -> Raster | None:
    """The raster after adding a fence whose cover boxes are `boxes`. `seg_map[old segment]`
    is the new number of each segment that was not split; `split` flags the split ones (both
    None: no bound moved). None when the boxes need a latitude strip (polar or huge fence):
    the caller rebuilds from scratch, as those are rare."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    r = raster
    i0, i1 = r._row(b[:, 1]), r._row(b[:, 3])
    j0, j1 = r._col(b[:, 0]), r._col(b[:, 2])
    count = (i1 - i0 + 1) * (j1 - j0 + 1)
    lat_max = np.maximum(np.abs(b[:, 1]), np.abs(b[:, 3]))
    if ((count > _BUDGET) | (lat_max > _POLAR)).any():
        return None
    new = copy.copy(r)
    if seg_map is not None and split is not None:
        # Codes name slots and pairs, whose H3 cells are kept: their segments take their new
        # numbers, and those of a split segment are found again from the cells (a code must
        # name the very segment of its H3 cell: a later edit relies on it). No raster cell
        # changes, so this costs the tables, not the raster.
        stale = np.flatnonzero(_in(r.slot_seg, split))
        new.slot_seg = _remap(r.slot_seg, seg_map)
        new.slot_seg[stale] = segment_of(r.slot_cell[stale])
        stale = np.flatnonzero(_in(r.seg_a, split) | _in(r.seg_b, split))
        new.seg_a, new.seg_b = _remap(r.seg_a, seg_map), _remap(r.seg_b, seg_map)
        new.seg_a[stale], new.seg_b[stale] = _pair_segments(r.pair_cells[stale], segment_of)
    keys = _cells(i0, i1, j0, j1, count, r.nj)
    fine = b[:, 4] > 0
    if not r.settles:
        near = np.empty(0, np.int64)
    elif keys.size <= _SETTLE_ALL:
        near = keys
    else:
        near = _cells(i0[fine], i1[fine], j0[fine], j1[fine], count[fine], r.nj)
    codes = np.full(keys.size, NEEDS_H3, np.int32)
    codes[np.searchsorted(keys, near)] = new.settle(near, segment_of)
    _write(new, r.grid, keys, codes)
    return new


# The tables hold segments or EMPTY (-1) only: shifted by one, one gather maps them (millions
# of pairs at 100 k fences: a third of the time of where/maximum/gather).


def _in(segs: I32, flag: NDArray[np.bool_]) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = np.concatenate([[False], flag])[segs + 1]
    return out


def _remap(segs: I32, seg_map: I32) -> I32:
    out: I32 = np.concatenate([np.array([EMPTY], np.int32), seg_map.astype(np.int32)])[segs + 1]
    return out


def _write(r: Raster, grid: I32, keys: Ints, codes: I32) -> None:
    """Set `codes` at `keys` in a copy of `grid`, first growing the dense window or inserting
    the missing tiles when the edit reaches new ground (one linear copy, no sort)."""
    if keys.size == 0:
        r.grid = grid
        return
    i, j = keys // r.nj, keys % r.nj
    if r.dense:
        a0, b0 = min(r.i0, int(i.min())), min(r.j0, int(j.min()))
        a1, b1 = max(r.i0 + r.h, int(i.max()) + 1), max(r.j0 + r.w, int(j.max()) + 1)
        h, w = a1 - a0, b1 - b0
        if (h, w) != (r.h, r.w):
            if h * w > _MAX_DENSE:  # too wide for one window now: tiles (rare, linear)
                old_keys, old_codes = _contents(r, grid)
                r._layout(*_merged(old_keys, old_codes, keys, codes))
                return
            out = np.full(h * w + 1, EMPTY, np.int32)
            block = out[:-1].reshape(h, w)
            block[r.i0 - a0 : r.i0 - a0 + r.h, r.j0 - b0 : r.j0 - b0 + r.w] = grid[:-1].reshape(
                r.h, r.w
            )
            r.i0, r.j0, r.h, r.w = a0, b0, h, w
            grid = out
        out = grid.copy() if grid is r.grid else grid
        out[(i - r.i0) * r.w + (j - r.j0)] = codes
    else:
        tile = (i >> _TILE) * r.tj + (j >> _TILE)
        have = np.searchsorted(r.tiles, tile)
        missing = np.ones(tile.size, bool)
        if r.tiles.size:
            missing = (have >= r.tiles.size) | (r.tiles[np.minimum(have, r.tiles.size - 1)] != tile)
        if missing.any():
            fresh = np.unique(tile[missing])
            at = np.searchsorted(r.tiles, fresh)
            r.tiles = np.insert(r.tiles, at, fresh)
            rows = grid.reshape(-1, 1 << (2 * _TILE))
            grid = np.insert(rows, at, EMPTY, axis=0).ravel()  # the "outside" row stays last
            r.index_tiles()  # rows moved: a new directory
        t = np.searchsorted(r.tiles, tile)
        out = grid.copy() if grid is r.grid else grid
        out[(t << (2 * _TILE)) | ((i & _MASK) << _TILE) | (j & _MASK)] = codes
    out.flags.writeable = False
    r.grid = out


def _merged(ka: Ints, ca: I32, kb: Ints, cb: I32) -> tuple[Ints, I32]:
    """Union of two sorted key sets with their codes, b's code winning on common keys."""
    keep = ~np.isin(ka, kb, assume_unique=True)
    keys = np.concatenate([ka[keep], kb])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.concatenate([ca[keep], cb])[order]


def _contents(r: Raster, grid: I32) -> tuple[Ints, I32]:
    """Every (key, code) the grid holds other than EMPTY, keys sorted."""
    flat = np.flatnonzero(grid != EMPTY)
    keys = _keys_at(r, flat)
    order = np.argsort(keys)
    return keys[order], grid[flat][order]


def _keys_at(r: Raster, flat: Ints) -> Ints:
    """Raster keys (i * nj + j) of grid slots (never the trailing "outside" slot or row,
    which hold EMPTY only)."""
    if r.dense:
        out: Ints = (flat // r.w + r.i0) * r.nj + (flat % r.w + r.j0)
        return out
    tile = r.tiles[flat >> (2 * _TILE)]
    cell = flat & ((1 << (2 * _TILE)) - 1)
    i = ((tile // r.tj) << _TILE) | (cell >> _TILE)
    j = ((tile % r.tj) << _TILE) | (cell & _MASK)
    keys: Ints = i * r.nj + j
    return keys
