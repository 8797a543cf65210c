"""BLE beacons: the registry (staff manage their stores' zones) and `POST /v1/beacon-sightings`."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.api.routes.pings import PresenceEventOut
from adapters.api.schema import json_body
from adapters.auth import Principal, Role
from adapters.db.beacons import (
    EDDYSTONE_UID,
    IBEACON,
    Beacon,
    Conflict,
    PgBeaconRepository,
    canonical_hex,
    canonical_uuid,
    eddystone_identity,
    ibeacon_identity,
)
from adapters.ingest.ping_codec import RowError, parse_ts
from adapters.ingest.proximity import SIGHTINGS, Sighting, ingest_sightings
from geo_engine.models import PresenceEvent
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
    found = await PgBeaconRepository(svc.pool).get(beacon_id)
    if found is None:
        raise field_error(404, "id", f"no beacon {beacon_id!r}")
    if not p.may_manage_store(found.store_id):
        raise ApiError(403, f"this key may not manage beacons of store {found.store_id!r}")
    return found


@router.post("/beacons", status_code=201, summary="Register a beacon in a zone")
async def create_beacon(body: BeaconIn, svc: Svc, p: Manager) -> BeaconOut:
    store_id = await _zone_store(svc, p, body.geofence_id)
    beacon = _canonical(body, body.id or f"bc_{uuid.uuid4().hex[:16]}", store_id)
    repo = PgBeaconRepository(svc.pool)
    try:
        await repo.create(beacon)
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
    found = await PgBeaconRepository(svc.pool).find(store_id, geofence_id)
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
    repo = PgBeaconRepository(svc.pool)
    if await repo.get(beacon_id) is not None:
        await _owned(svc, p, beacon_id)  # moving another store's beacon needs its rights too
    try:
        created = await repo.put(_canonical(body, beacon_id, store_id))
    except Conflict as exc:
        raise field_error(409, exc.field, exc.reason) from None
    response.status_code = 201 if created else 200
    return _out(await _owned(svc, p, beacon_id))


@router.delete("/beacons/{beacon_id}", status_code=204, summary="Remove a beacon")
async def delete_beacon(beacon_id: str, svc: Svc, p: Manager) -> Response:
    await _owned(svc, p, beacon_id)
    await PgBeaconRepository(svc.pool).delete(beacon_id)
    return Response(status_code=204)


# -- sightings ------------------------------------------------------------------------------------

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Short = Annotated[str, msgspec.Meta(max_length=64)]
U16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class SightingIn(msgspec.Struct):
    rssi: Annotated[float, msgspec.Meta(ge=-120.0, le=0.0)]
    ts: float | str
    device_id: Ident | None = None
    customer_id: Ident | None = None
    uuid: Short | None = None
    major: U16 | None = None
    minor: U16 | None = None
    namespace: Short | None = None
    instance: Short | None = None
    # as the frame advertises it: iBeacon measured power (1 m), Eddystone Tx power (0 m)
    tx_power: Annotated[int, msgspec.Meta(ge=-127, le=20)] | None = None


class _Envelope(msgspec.Struct):
    sightings: list[msgspec.Raw]


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


class RowRejected(BaseModel):
    index: int
    field: str
    reason: str


class RowIgnored(BaseModel):
    index: int
    reason: str = Field(description="unknown_beacon, too_far, late: accepted, no evidence")


class SightingBatchResult(BaseModel):
    accepted: int = Field(description="Rows that passed validation (ignored ones included)")
    rejected: list[RowRejected]
    ignored: list[RowIgnored]
    events: list[PresenceEventOut]


_envelope = msgspec.json.Decoder(_Envelope)
_row = msgspec.json.Decoder(SightingIn)
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _split(message: str) -> tuple[str, str]:
    """msgspec's message -> (field path, reason)."""
    m = _PATH.search(message)
    path, reason = (m.group(1) or "", message[: m.start()]) if m else ("", message)
    missing = _MISSING.search(reason)
    if missing:
        path, reason = missing.group(1), "required field is missing"
    return path, reason


class _Bad(Exception):
    """One row is rejected: which field, why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _identity(s: SightingIn) -> tuple[str, str]:
    """(canonical identity, kind); _Bad when incomplete or malformed."""
    if s.uuid is not None or s.major is not None or s.minor is not None:
        if s.namespace is not None or s.instance is not None:
            raise _Bad("uuid", "either uuid, major, minor or namespace, instance")
        for name in ("uuid", "major", "minor"):
            if getattr(s, name) is None:
                raise _Bad(name, "required for an iBeacon sighting")
        assert s.uuid is not None and s.major is not None and s.minor is not None
        try:
            return ibeacon_identity(canonical_uuid(s.uuid), s.major, s.minor), IBEACON
        except ValueError as exc:
            raise _Bad("uuid", str(exc)) from None
    if s.namespace is None or s.instance is None:
        raise _Bad("uuid", "a beacon identity is required: uuid+major+minor or namespace+instance")
    try:
        ns = canonical_hex(s.namespace, 10)
    except ValueError as exc:
        raise _Bad("namespace", str(exc)) from None
    try:
        return eddystone_identity(ns, canonical_hex(s.instance, 6)), EDDYSTONE_UID
    except ValueError as exc:
        raise _Bad("instance", str(exc)) from None


def decode_sightings(body: bytes, svc: Svc) -> tuple[list[Sighting], list[RowError]]:
    s = svc.settings
    try:
        env = _envelope.decode(body)
    except msgspec.ValidationError as exc:
        field, reason = _split(str(exc))
        raise field_error(422, field or "sightings", reason) from None
    except msgspec.DecodeError as exc:
        raise field_error(400, "body", f"malformed JSON: {exc}") from None
    if len(env.sightings) > s.max_batch_size:
        reason = f"batch of {len(env.sightings)} exceeds the limit of {s.max_batch_size} rows"
        raise field_error(413, "sightings", reason)
    now = time.time()
    rows: list[Sighting] = []
    errors: list[RowError] = []
    for i, raw in enumerate(env.sightings):
        try:
            row = _row.decode(raw)
            if row.customer_id is None and row.device_id is None:
                raise _Bad("device_id", "one of device_id or customer_id is required")
            identity, kind = _identity(row)
            if kind == IBEACON and row.tx_power is not None and row.tx_power >= 0:
                raise _Bad("tx_power", "an iBeacon's 1 m power must be negative")
            try:
                ts = parse_ts(row.ts)
            except ValueError as exc:
                raise _Bad("ts", str(exc)) from None
            if ts > now + s.max_future_skew_s:
                raise _Bad("ts", f"more than {s.max_future_skew_s:.0f} s in the future")
            if ts < now - s.max_past_age_s:
                raise _Bad("ts", f"older than the {s.max_past_age_s:.0f} s accepted")
        except msgspec.ValidationError as exc:
            field, reason = _split(str(exc))
            errors.append(RowError(i, field or "row", reason))
            continue
        except msgspec.DecodeError as exc:
            errors.append(RowError(i, "row", str(exc)))
            continue
        except _Bad as exc:
            errors.append(RowError(i, exc.field, exc.reason))
            continue
        cid = row.customer_id or svc.runtime.customer_for(row.device_id or "")
        rows.append(Sighting(i, cid, identity, row.rssi, ts, row.tx_power))
    return rows, errors


@router.post(
    "/beacon-sightings",
    summary="Ingest a batch of BLE beacon sightings",
    response_model=SightingBatchResult,
    openapi_extra=json_body(SightingBatchDoc),
)
async def post_sightings(request: Request, svc: Svc, _: Ingest) -> SightingBatchResult:
    rows, errors = decode_sightings(await request.body(), svc)
    SIGHTINGS.labels("rejected").inc(len(errors))
    outcome = await ingest_sightings(svc, rows) if rows else None
    return SightingBatchResult(
        accepted=len(rows),
        rejected=[RowRejected(index=e.index, field=e.field, reason=e.reason) for e in errors],
        ignored=[]
        if outcome is None
        else [RowIgnored(index=i, reason=r) for i, r in outcome.ignored],
        events=[] if outcome is None else [event_out(i, e) for i, e in outcome.events],
    )


def event_out(event_id: int, e: PresenceEvent) -> PresenceEventOut:
    return PresenceEventOut(
        id=event_id,
        type=e.type.value,
        customer_id=e.customer_id,
        geofence_id=e.geofence_id,
        ts=datetime.fromtimestamp(e.ts, UTC),
        source=e.source,
        reason=e.reason,
    )
