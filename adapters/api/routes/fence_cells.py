"""GET /v1/geofences/{id}/cells: the H3 cells a fence occupies in the matching index, as a
GeoJSON FeatureCollection (the console's optional H3 layer)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.auth import Principal, Role
from geofences.cells import FenceCells, cell_rings, fence_cells

router = APIRouter(prefix="/v1/geofences", tags=["geofences"], responses=ERROR_RESPONSES)
Manager = Annotated[Principal, Depends(require(Role.STAFF))]
# a map layer, not an export: the largest fence the limits allow (25 km²) has ~1,200 cells at
# resolution 11; past this the answer is cut (boundary cells first) and says so
MAX_CELLS = 5_000


class CellProperties(BaseModel):
    h3: str = Field(description="H3 index, hexadecimal")
    full: bool = Field(description="Wholly inside the fence (interior); false: a boundary cell")
    res: int = Field(description="The cell's resolution: interior cells merge into coarser ones")


class Polygon(BaseModel):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[list[float]]]


class CellFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    properties: CellProperties
    geometry: Polygon


class CellCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    resolution: int = Field(description="The index's point resolution (boundary cells use it)")
    total: int = Field(description="Cells of the fence in the index")
    truncated: bool = Field(description=f"Only the first {MAX_CELLS} (boundary cells first)")
    features: list[CellFeature]


def _collection(cells: FenceCells) -> CellCollection:
    kept = cells.cells[:MAX_CELLS]
    rings = cell_rings(kept)
    res = cells.resolutions()[:MAX_CELLS].tolist()
    full = cells.interior[:MAX_CELLS].tolist()
    return CellCollection(
        resolution=cells.resolution,
        total=len(cells),
        truncated=len(cells) > MAX_CELLS,
        features=[
            CellFeature(
                properties=CellProperties(h3=f"{c:x}", full=f, res=r),
                geometry=Polygon(coordinates=[ring]),
            )
            for c, f, r, ring in zip(kept.tolist(), full, res, rings, strict=True)
        ],
    )


@router.get(
    "/{fence_id}/cells",
    response_model=CellCollection,
    summary="The fence's H3 cells in the matching index (interior and boundary), as GeoJSON",
)
async def fence_cells_geojson(
    fence_id: Annotated[str, Path(max_length=128)], svc: Svc, p: Manager
) -> CellCollection:
    fence = await svc.fences.get(fence_id)
    if fence is None:
        raise field_error(404, "id", f"no geofence {fence_id!r}")
    if not p.may_manage_store(fence.store_id):
        raise ApiError(403, f"this key may not manage fences of store {fence.store_id!r}")
    # the cover of this fence alone is what the index holds for it (geofences/cells.py);
    # building it is CPU work of up to a few hundred ms: off the event loop
    resolution = svc.runtime.index.resolution
    cells = await asyncio.to_thread(fence_cells, fence, resolution)
    return await asyncio.to_thread(_collection, cells)
