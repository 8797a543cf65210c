"""Geofences: GeoJSON in and out; staff manage only their own stores' fences."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, FieldError, field_error
from adapters.auth import Principal, Role
from geofences.model import FenceKind, Geofence, GeofenceError
from geofences.validation import fence_from_feature, fence_to_feature

router = APIRouter(prefix="/v1/geofences", tags=["geofences"], responses=ERROR_RESPONSES)
Manager = Annotated[Principal, Depends(require(Role.STAFF))]


class FenceProperties(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(description="Display name, 1-200 characters")
    kind: FenceKind
    store_id: str | None = Field(None, description="Required for kind store and zone")
    radius_m: float | None = Field(None, description="Circle radius; required for a Point")
    timezone: str | None = Field(None, description="IANA time zone, e.g. Europe/Paris")
    opening_hours: dict[str, list[list[str]]] | None = Field(
        None, description='Per day mon..sun, e.g. {"mon": [["09:00", "20:00"]]}'
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class Feature(BaseModel):
    """A GeoJSON Feature: Polygon, MultiPolygon, or Point with properties.radius_m."""

    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    id: str | None = None
    geometry: dict[str, Any]
    properties: FenceProperties


class FeatureCollection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]


class ImportResult(BaseModel):
    imported: int
    ids: list[str]


def _parse(feature: dict[str, Any], svc: Svc, fence_id: str | None = None) -> Geofence:
    fid = fence_id or feature.get("id") or f"gf_{uuid.uuid4().hex[:16]}"
    try:
        return fence_from_feature(feature, svc.settings.validation_limits(), fence_id=str(fid))
    except GeofenceError as exc:
        raise field_error(422, exc.field, exc.reason) from None


def _check_scope(p: Principal, fence: Geofence) -> None:
    if not p.may_manage_store(fence.store_id):
        raise ApiError(403, f"this key may not manage fences of store {fence.store_id!r}")


async def _owned(svc: Svc, p: Principal, fence_id: str) -> Geofence:
    fence = await svc.fences.get(fence_id)
    if fence is None:
        raise field_error(404, "id", f"no geofence {fence_id!r}")
    _check_scope(p, fence)
    return fence


@router.post("", status_code=201, summary="Create a geofence from a GeoJSON Feature")
async def create_fence(body: Feature, svc: Svc, p: Manager) -> dict[str, Any]:
    fence = _parse(body.model_dump(mode="json", exclude_unset=True), svc)
    _check_scope(p, fence)
    if await svc.fences.get(fence.id) is not None:
        raise field_error(409, "id", f"geofence {fence.id!r} exists: use PUT to replace it")
    await svc.fences.upsert(fence)
    await svc.control.changed("fences", fence.id)  # one fence: live in ms, not a rebuild
    return fence_to_feature(fence)


@router.get("", summary="List geofences as a FeatureCollection")
async def list_fences(
    svc: Svc,
    p: Manager,
    store_id: Annotated[str | None, Query(max_length=128)] = None,
    kind: FenceKind | None = None,
) -> dict[str, Any]:
    if p.role is Role.STAFF and store_id is not None and store_id not in p.store_ids:
        raise ApiError(403, f"this key may not read fences of store {store_id!r}")
    fences = await svc.fences.find(store_id, None if kind is None else str(kind))
    if p.role is Role.STAFF:
        fences = [f for f in fences if f.store_id in p.store_ids]
    return {"type": "FeatureCollection", "features": [fence_to_feature(f) for f in fences]}


@router.post("/import", summary="Import a FeatureCollection, all or nothing")
async def import_fences(body: FeatureCollection, svc: Svc, p: Manager) -> ImportResult:
    limit = svc.settings.max_import_features
    if len(body.features) > limit:
        raise field_error(
            413, "features", f"{len(body.features)} features exceed the limit of {limit}"
        )
    fences: list[Geofence] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    limits = svc.settings.validation_limits()
    for i, feat in enumerate(body.features):
        fid = str(feat.get("id") or f"gf_{uuid.uuid4().hex[:16]}")
        try:
            fence = fence_from_feature(feat, limits, fence_id=fid)
        except GeofenceError as exc:
            errors.append(
                FieldError(field=f"features[{i}].{exc.field}", reason=exc.reason, index=i)
            )
            continue
        if fence.id in seen:
            errors.append(FieldError(field=f"features[{i}].id", reason="duplicate id", index=i))
            continue
        if not p.may_manage_store(fence.store_id):
            raise ApiError(403, f"features[{i}]: this key may not manage store {fence.store_id!r}")
        seen.add(fence.id)
        fences.append(fence)
    if errors:
        raise ApiError(422, f"{len(errors)} invalid feature(s); nothing imported", errors)
    for fence in fences:  # replacing a fence of another store needs that store's rights too
        old = await svc.fences.get(fence.id)
        if old is not None:
            _check_scope(p, old)
    await svc.fences.upsert_many(fences)
    await svc.control.changed("fences")
    return ImportResult(imported=len(fences), ids=[f.id for f in fences])


@router.get("/{fence_id}", summary="Read one geofence")
async def get_fence(fence_id: str, svc: Svc, p: Manager) -> dict[str, Any]:
    return fence_to_feature(await _owned(svc, p, fence_id))


@router.put("/{fence_id}", summary="Create or replace a geofence")
async def put_fence(
    fence_id: str, body: Feature, svc: Svc, p: Manager, response: Response
) -> dict[str, Any]:
    if body.id is not None and body.id != fence_id:
        raise field_error(422, "id", f"body id {body.id!r} differs from the path id {fence_id!r}")
    fence = _parse(body.model_dump(mode="json", exclude_unset=True), svc, fence_id)
    _check_scope(p, fence)
    old = await svc.fences.get(fence_id)
    if old is not None:
        _check_scope(p, old)
    created = await svc.fences.upsert(fence)
    response.status_code = 201 if created else 200
    await svc.control.changed("fences", fence.id)
    return fence_to_feature(fence)


@router.delete("/{fence_id}", status_code=204, summary="Delete a geofence and its presence state")
async def delete_fence(fence_id: str, svc: Svc, p: Manager) -> Response:
    await _owned(svc, p, fence_id)
    await svc.fences.delete(fence_id)
    await svc.control.changed("fence_deleted", fence_id)
    return Response(status_code=204)
