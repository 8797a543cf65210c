"""`POST /v1/pings`: the hot path. Decoded with msgspec (the pydantic models here only document
the wire format in OpenAPI); good rows go through even when others are rejected."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from adapters import metrics
from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.api.ingest import IdempotencyKey, Wait, log_key, merged_ingest, ping_parts
from adapters.api.lean import LaneRoute
from adapters.api.models import Accepted, PingBatchResult
from adapters.api.schema import json_body
from adapters.auth import Principal, Role
from adapters.codecs.pings import BatchError, decode_pings
from adapters.composition import Services
from adapters.services.presence import IngestResult

router = APIRouter(prefix="/v1", tags=["pings"], responses=ERROR_RESPONSES)
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]


class PingInDoc(BaseModel):
    device_id: str | None = Field(None, description="Resolved to its linked customer, if any")
    customer_id: str | None = Field(None, description="One of device_id or customer_id")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, description="0 or missing = unknown")
    ts: float | str = Field(description="Fix time: unix seconds, or ISO 8601 with an offset")
    speed_mps: float | None = Field(None, ge=0)
    heading: float | None = Field(None, ge=0, le=360)
    mock: bool = False


class PingBatchDoc(BaseModel):
    pings: list[PingInDoc]


class _RowRejected(msgspec.Struct):
    index: int
    field: str
    reason: str


class _RowIgnored(msgspec.Struct):
    index: int
    reason: str


class _EventOut(msgspec.Struct):
    id: int
    type: str
    customer_id: str
    geofence_id: str
    ts: datetime
    source: str
    reason: str | None


class _Result(msgspec.Struct):
    accepted: int
    rejected: list[_RowRejected]
    ignored: list[_RowIgnored]
    events: list[_EventOut]


_encode = msgspec.json.Encoder().encode


class _Accepted(msgspec.Struct):
    accepted: int
    rejected: list[_RowRejected]
    duplicate: bool = False


@router.post(
    "/pings",
    summary="Ingest a batch of location fixes",
    status_code=202,
    response_model=Accepted,
    responses={200: {"model": PingBatchResult, "description": "With ?wait=true: applied"}},
    openapi_extra=json_body(PingBatchDoc),
)
async def post_pings(
    request: Request,
    svc: Svc,
    principal: Ingest,
    key: IdempotencyKey = None,
    wait: Wait = False,
) -> Response:
    """202 once the batch is durable in the log (its partition owners apply it in order);
    with `?wait=true`, 200 once applied, with the transitions it caused.

    `serve` answers this route in the lean lane (adapters/api/lean.py, through `accepted`);
    FastAPI answers what the lane leaves to it (a browser's request, for CORS)."""
    status, body = await accepted(svc, principal, await request.body(), key, wait)
    return Response(body, status, media_type="application/json")


async def accepted(
    svc: Services, principal: Principal, body: bytes, key: str | None, wait: bool
) -> tuple[int, bytes]:
    """The reply to a batch (status, JSON) once its good rows are durable in the log, or
    applied when `wait`; a refusal raised as the API's error."""
    s = svc.settings
    try:
        decoded = decode_pings(
            body,
            max_batch=s.max_batch_size,
            now=time.time(),
            max_future_s=s.max_future_skew_s,
            max_age_s=s.max_past_age_s,
        )
    except BatchError as exc:
        raise field_error(exc.status, exc.field, exc.reason) from None
    if decoded.errors:
        metrics.PINGS.labels("rejected").inc(len(decoded.errors))
    rejected = [_RowRejected(e.index, e.field, e.reason) for e in decoded.errors]
    parts = ping_parts(svc, decoded)
    done = await svc.ingest.submit(parts, key=log_key(key, principal), wait=wait)
    if done.results is None or not wait:
        return 202, _encode(_Accepted(len(decoded.rows), rejected, done.resent))
    result = merged_ingest(done.results) if decoded.rows else None
    return 200, _encode(_applied(result, rejected))


LANE = {"/v1/pings": LaneRoute((Role.INGEST,), accepted)}  # answered ahead of FastAPI


def _applied(result: IngestResult | None, rejected: list[_RowRejected]) -> _Result:
    if result is None:
        return _Result(accepted=0, rejected=rejected, ignored=[], events=[])
    ignored = [_RowIgnored(i, str(f)) for i, f in result.flags]
    ignored += [_RowIgnored(i, r) for i, r in result.dropped]
    events = [
        _EventOut(
            id=eid,
            type=str(e.type),
            customer_id=e.customer_id,
            geofence_id=e.geofence_id,
            ts=datetime.fromtimestamp(e.ts, UTC),
            source=e.source,
            reason=e.reason,
        )
        for eid, e in result.events
    ]
    return _Result(result.accepted, rejected, sorted(ignored, key=lambda r: r.index), events)
