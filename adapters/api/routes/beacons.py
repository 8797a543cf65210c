"""BLE beacons: the registry (staff manage their stores' zones) and `POST /v1/beacon-sightings`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.api.ingest import IdempotencyKey, Wait, result, submit
from adapters.api.models import Accepted, PresenceEventOut, RowRejected, event_out
from adapters.api.schema import json_body
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.codecs.pings import BatchError
from adapters.codecs.sightings import decode_sightings
from adapters.services.proximity import SIGHTINGS, SightingsOutcome
from geo_engine.proximity_ports import (
    EDDYSTONE_UID,
    IBEACON,
    Beacon,
    Conflict,
    canonical_hex,
    canonical_uuid,
)
from geofences.model import FenceKind

router = APIRouter(prefix="/v1", tags=["beacons"], responses=ERROR_RESPONSES)
Manager = Annotated[Principal, Depends(require(Role.STAFF))]
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]
Id = Annotated[str, Field(min_length=1, max_length=128)]


class BeaconIn(BaseModel):
    """iBeacon: uuid + major + minor. Eddystone-UID: namespace + instance."""

    id: Id | None = Field(None, description="Generated when missing (POST)")
    geofence_id: Id = Field(description="The zone (a fence of kind zone) the beacon is placed in")
    uuid: str | None = Field(None, description="iBeacon proximity UUID", max_length=64)
    major: int | None = Field(None, ge=0, le=65535)
    minor: int | None = Field(None, ge=0, le=65535)
    namespace: str | None = Field(None, description="Eddystone-UID: 10 bytes hex", max_length=64)
    instance: str | None = Field(None, description="Eddystone-UID: 6 bytes hex", max_length=64)
    measured_power: int | None = Field(
        None,
        ge=-120,
        le=-1,
        description="RSSI at 1 m, dBm (Eddystone: its Tx power at 0 m minus 41). Missing: "
        "the sighting's tx_power, else GEO_ENGINE_BEACON_DEFAULT_MEASURED_POWER",
    )
    placement: str | None = Field(None, max_length=500, description="Where it is, in words")
    metadata: dict[str, Any] = Field(default_factory=dict)


class BeaconOut(BaseModel):
    id: str
    type: Literal["ibeacon", "eddystone_uid"]
    geofence_id: str
    store_id: str | None
    uuid: str | None
    major: int | None
    minor: int | None
    namespace: str | None
    instance: str | None
    measured_power: int | None
    placement: str | None
    metadata: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None


class BeaconList(BaseModel):
    beacons: list[BeaconOut]


def _out(b: Beacon) -> BeaconOut:
    return BeaconOut(
        id=b.id,
        type="ibeacon" if b.kind == IBEACON else "eddystone_uid",
        geofence_id=b.geofence_id,
        store_id=b.store_id,
        uuid=b.uuid,
        major=b.major,
        minor=b.minor,
        namespace=b.namespace,
        instance=b.instance,
        measured_power=b.measured_power,
        placement=b.placement,
        metadata=b.metadata,
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


def _canonical(body: BeaconIn, beacon_id: str, store_id: str | None) -> Beacon:
    ibeacon = (body.uuid, body.major, body.minor)
    eddystone = (body.namespace, body.instance)
    is_i, is_e = any(v is not None for v in ibeacon), any(v is not None for v in eddystone)
    if is_i == is_e:
        raise field_error(422, "uuid", "give uuid, major, minor (iBeacon) or namespace, instance")
    common: dict[str, Any] = {
        "id": beacon_id,
        "geofence_id": body.geofence_id,
        "measured_power": body.measured_power,
        "placement": body.placement,
        "metadata": body.metadata,
        "store_id": store_id,
    }
    try:
        if is_i:
            for name, v in zip(("uuid", "major", "minor"), ibeacon, strict=True):
                if v is None:
                    raise field_error(422, name, "required for an iBeacon")
            assert body.uuid is not None
            return Beacon(
                kind=IBEACON,
                uuid=canonical_uuid(body.uuid),
                major=body.major,
                minor=body.minor,
                **common,
            )
    except ValueError as exc:
        raise field_error(422, "uuid", str(exc)) from None
    hexes: dict[str, Any] = {}
    for name, value, size in (("namespace", body.namespace, 10), ("instance", body.instance, 6)):
        try:
            hexes[name] = canonical_hex(value or "", size)
        except ValueError as exc:
            raise field_error(422, name, str(exc)) from None
    return Beacon(kind=EDDYSTONE_UID, **hexes, **common)


async def _zone_store(svc: Svc, p: Principal, fence_id: str) -> str | None:
    """The store of the zone a beacon goes in; 422 if no such zone, 403 if not the key's."""
    fence = await svc.fences.get(fence_id)
    if fence is None:
        raise field_error(422, "geofence_id", f"no geofence {fence_id!r}")
    if fence.kind is not FenceKind.ZONE:
        raise field_error(422, "geofence_id", f"must be a zone (kind zone), not a {fence.kind}")
    if not p.may_manage_store(fence.store_id):
        raise ApiError(403, f"this key may not manage beacons of store {fence.store_id!r}")
    return fence.store_id


async def _owned(svc: Svc, p: Principal, beacon_id: str) -> Beacon:
    found = await svc.proximity.beacons.get(beacon_id)
    if found is None:
        raise field_error(404, "id", f"no beacon {beacon_id!r}")
    if not p.may_manage_store(found.store_id):
        raise ApiError(403, f"this key may not manage beacons of store {found.store_id!r}")
    return found


@router.post("/beacons", status_code=201, summary="Register a beacon in a zone")
async def create_beacon(body: BeaconIn, svc: Svc, p: Manager) -> BeaconOut:
    store_id = await _zone_store(svc, p, body.geofence_id)
    beacon = _canonical(body, body.id or f"bc_{uuid.uuid4().hex[:16]}", store_id)
    beacons = svc.proximity.beacons
    try:
        await beacons.create(beacon)
    except Conflict as exc:
        raise field_error(409, exc.field, exc.reason) from None
    return _out(await _owned(svc, p, beacon.id))


@router.get("/beacons", summary="List beacons, by store or zone")
async def list_beacons(
    svc: Svc,
    p: Manager,
    store_id: Annotated[str | None, Query(max_length=128)] = None,
    geofence_id: Annotated[str | None, Query(max_length=128)] = None,
) -> BeaconList:
    if p.role is Role.STAFF and store_id is not None and store_id not in p.store_ids:
        raise ApiError(403, f"this key may not read beacons of store {store_id!r}")
    found = await svc.proximity.beacons.find(store_id, geofence_id)
    if p.role is Role.STAFF:
        found = [b for b in found if b.store_id in p.store_ids]
    return BeaconList(beacons=[_out(b) for b in found])


@router.get("/beacons/{beacon_id}", summary="Read one beacon")
async def get_beacon(beacon_id: str, svc: Svc, p: Manager) -> BeaconOut:
    return _out(await _owned(svc, p, beacon_id))


@router.put("/beacons/{beacon_id}", summary="Create or replace a beacon")
async def put_beacon(
    beacon_id: str, body: BeaconIn, svc: Svc, p: Manager, response: Response
) -> BeaconOut:
    if body.id is not None and body.id != beacon_id:
        raise field_error(422, "id", f"body id {body.id!r} differs from the path id {beacon_id!r}")
    store_id = await _zone_store(svc, p, body.geofence_id)
    beacons = svc.proximity.beacons
    if await beacons.get(beacon_id) is not None:
        await _owned(svc, p, beacon_id)  # moving another store's beacon needs its rights too
    try:
        created = await beacons.put(_canonical(body, beacon_id, store_id))
    except Conflict as exc:
        raise field_error(409, exc.field, exc.reason) from None
    response.status_code = 201 if created else 200
    return _out(await _owned(svc, p, beacon_id))


@router.delete("/beacons/{beacon_id}", status_code=204, summary="Remove a beacon")
async def delete_beacon(beacon_id: str, svc: Svc, p: Manager) -> Response:
    await _owned(svc, p, beacon_id)
    await svc.proximity.beacons.delete(beacon_id)
    return Response(status_code=204)


# -- sightings ------------------------------------------------------------------------------------


class SightingDoc(BaseModel):
    device_id: str | None = Field(None, description="Resolved to its linked customer, if any")
    customer_id: str | None = Field(None, description="One of device_id or customer_id")
    uuid: str | None = Field(None, description="iBeacon: with major and minor")
    major: int | None = Field(None, ge=0, le=65535)
    minor: int | None = Field(None, ge=0, le=65535)
    namespace: str | None = Field(None, description="Eddystone-UID: 10 bytes hex, with instance")
    instance: str | None = Field(None, description="Eddystone-UID: 6 bytes hex")
    rssi: float = Field(ge=-120, le=0, description="Received signal strength, dBm")
    tx_power: int | None = Field(
        None, ge=-127, le=20, description="Advertised: iBeacon 1 m power, Eddystone 0 m power"
    )
    ts: float | str = Field(description="Unix seconds, or ISO 8601 with an offset")


class SightingBatchDoc(BaseModel):
    sightings: list[SightingDoc]


class SightingIgnored(BaseModel):
    index: int
    reason: str = Field(description="unknown_beacon, too_far, late: accepted, no evidence")


class SightingBatchResult(BaseModel):
    accepted: int = Field(description="Rows that passed validation (ignored ones included)")
    rejected: list[RowRejected]
    ignored: list[SightingIgnored]
    events: list[PresenceEventOut]


@router.post(
    "/beacon-sightings",
    summary="Ingest a batch of BLE beacon sightings",
    status_code=202,
    response_model=Accepted,
    responses={200: {"model": SightingBatchResult, "description": "With ?wait=true: applied"}},
    openapi_extra=json_body(SightingBatchDoc),
)
async def post_sightings(
    request: Request,
    svc: Svc,
    principal: Ingest,
    _key: IdempotencyKey = None,
    wait: Wait = False,
) -> Response:
    """202 once durable in the log; with `?wait=true`, 200 once applied, with its events."""
    st = svc.settings
    try:
        rows, errors = decode_sightings(
            await request.body(),
            max_batch=st.max_batch_size,
            max_future_s=st.max_future_skew_s,
            max_age_s=st.max_past_age_s,
            customer_for=svc.runtime.customer_for,
        )
    except BatchError as exc:
        raise field_error(exc.status, exc.field, exc.reason) from None
    SIGHTINGS.labels("rejected").inc(len(errors))
    rejected = [RowRejected(index=e.index, field=e.field, reason=e.reason) for e in errors]
    parts: dict[int, c.Sightings] = {}
    for row in rows:
        parts.setdefault(svc.ingest.partition(row.customer_id), c.Sightings([])).rows.append(row)
    done = await submit(svc, request, principal, parts, wait=wait)
    if done.results is None or not wait:
        accepted = Accepted(accepted=len(rows), rejected=rejected, duplicate=done.resent)
        return JSONResponse(accepted.model_dump(mode="json"), 202)
    ignored: list[SightingIgnored] = []
    events: list[PresenceEventOut] = []
    for reply in done.results:
        outcome = result(reply, SightingsOutcome)
        ignored += [SightingIgnored(index=i, reason=r) for i, r in outcome.ignored]
        events += [event_out(i, e) for i, e in outcome.events]
    ignored.sort(key=lambda x: x.index)
    events.sort(key=lambda x: x.id)
    out = SightingBatchResult(accepted=len(rows), rejected=rejected, ignored=ignored, events=events)
    return JSONResponse(out.model_dump(mode="json"))
