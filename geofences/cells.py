"""The H3 cells one fence occupies in the matching index, as polygons a map can draw.

They are the fence's cover (cover.py), exactly as the index builds it for that fence
(edit.py `with_fence` builds the same one-fence cover): interior cells, merged into their parent
when all seven children are interior (so of mixed, coarser resolutions), and boundary cells at
the index's point resolution, where a fix still needs the exact point-in-fence test.
"""

from __future__ import annotations

from dataclasses import dataclass

import h3.api.basic_int as h3i
import numpy as np
from numpy.typing import NDArray

from geofences.cover import FenceArrays, build_cover
from geofences.geodesy import wrap_lon
from geofences.h3cells import resolution_of
from geofences.model import Geofence

Ring = list[list[float]]


@dataclass(frozen=True, slots=True)
class FenceCells:
    resolution: int  # the index's point resolution (boundary cells are at it)
    cells: NDArray[np.int64]  # boundary cells first, then interior ones, each part sorted
    interior: NDArray[np.bool_]  # the cell lies wholly inside the fence: no exact test needed

    def __len__(self) -> int:
        return int(self.cells.size)

    def resolutions(self) -> NDArray[np.int64]:
        return resolution_of(self.cells)


def fence_cells(fence: Geofence, resolution: int) -> FenceCells:
    """The cover of `fence` alone at `resolution`: a fence's cells do not depend on the
    others, so this is what the live index holds for it."""
    cover = build_cover(FenceArrays.of([fence]), resolution)
    # boundary cells first: if an answer is cut, the outline (what the map shows) survives
    order = np.lexsort((cover.cells, cover.interior))
    return FenceCells(resolution, cover.cells[order], cover.interior[order])


def cell_rings(cells: NDArray[np.int64]) -> list[Ring]:
    """Each cell's boundary as a closed GeoJSON ring of [lon, lat]. A cell across the
    antimeridian keeps its longitudes continuous (past ±180 rather than a ring around the
    world), as map libraries draw it."""
    bounds = [h3i.cell_to_boundary(c) for c in cells.tolist()]
    sizes = np.fromiter(map(len, bounds), np.int64, len(bounds))
    flat = np.array([p for b in bounds for p in b], dtype=np.float64).reshape(-1, 2)
    starts = np.cumsum(sizes) - sizes
    first_lon = np.repeat(flat[starts, 1], sizes)
    lon = first_lon + wrap_lon(flat[:, 1] - first_lon)
    lon_lat = np.column_stack([lon, flat[:, 0]]).tolist()
    rings = []
    for start, n in zip(starts.tolist(), sizes.tolist(), strict=True):
        ring = lon_lat[start : start + n]
        ring.append(ring[0])
        rings.append(ring)
    return rings
