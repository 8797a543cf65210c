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
from adapters.api.ingest import IdempotencyKey, Wait, merged_ingest, ping_parts, submit
from adapters.api.models import Accepted, PingBatchResult
from adapters.api.schema import json_body
from adapters.auth import Principal, Role
from adapters.codecs.pings import BatchError, decode_pings

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
    _key: IdempotencyKey = None,
    wait: Wait = False,
) -> Response:
    """202 once the batch is durable in the log (its partition owners apply it in order);
    with `?wait=true`, 200 once applied, with the transitions it caused."""
    body = await request.body()
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
    metrics.PINGS.labels("rejected").inc(len(decoded.errors))
    rejected = [_RowRejected(e.index, e.field, e.reason) for e in decoded.errors]
    done = await submit(svc, request, principal, ping_parts(svc, decoded), wait=wait)
    if done.results is None or not wait:
        accepted = _Accepted(len(decoded.rows), rejected, done.resent)
        return Response(_encode(accepted), 202, media_type="application/json")
    result = merged_ingest(done.results) if decoded.rows else None
    out = _Result(
        accepted=0 if result is None else result.accepted,
        rejected=rejected,
        ignored=[]
        if result is None
        else sorted(
            [_RowIgnored(i, str(f)) for i, f in result.flags]
            + [_RowIgnored(i, r) for i, r in result.dropped],
            key=lambda r: r.index,
        ),
        events=[]
        if result is None
        else [
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
        ],
    )
    return Response(_encode(out), media_type="application/json")
