"""`GET /v1/outbox?status=`, `GET /v1/outbox/{id}` and `POST /v1/outbox/{id}/retry` (admin):
what the relay sent, retried, expired or gave up on, one message's history (its gateway
attempts and the provider's status callbacks), and the re-drive of a dead letter."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.auth import Principal
from adapters.db.outbox_admin import list_outbox, outbox_detail, redrive

router = APIRouter(prefix="/v1", tags=["delivery"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]
Status = Literal["pending", "sending", "sent", "failed", "expired", "dead"]
OutboxId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class OutboxOut(BaseModel):
    id: int
    idempotency_key: str
    customer_id: str
    campaign_id: str
    offer_id: str
    channel: str
    status: str
    attempts: int
    send_after: datetime
    next_attempt_at: datetime | None
    expires_at: datetime
    last_error: str | None
    provider_id: str | None
    sent_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    # what the provider reported afterwards (Twilio status callbacks): delivered, failed...
    delivery_status: str | None = None
    delivered_at: datetime | None = None
    delivery_error_code: int | None = None


class OutboxList(BaseModel):
    messages: list[OutboxOut]
    next_after_id: int | None = None


class AttemptOut(BaseModel):
    attempt: int
    gateway: str = Field(description="`-` when no gateway was called (expired, consent)")
    outcome: Literal["sent", "retry", "dead", "expired"]
    http_status: int | None
    error: str | None
    ts: datetime


class StatusLogOut(BaseModel):
    status: str = Field(description="As the provider reported it: delivered, failed...")
    error_code: int | None
    applied: bool = Field(description="False: it came after a later status (not applied)")
    ts: datetime


class OutboxDetailOut(OutboxOut):
    delivery_attempts: list[AttemptOut] = Field(description="Every gateway attempt, in order")
    status_log: list[StatusLogOut]


class RetryOut(BaseModel):
    id: int
    status: str


@router.get("/outbox", response_model=OutboxList, summary="Outbox rows, by status")
async def get_outbox(
    svc: Svc,
    _: Admin,
    status: Annotated[Status | None, Query(description="e.g. dead: the dead letters")] = None,
    after_id: Annotated[int | None, Query(ge=0, description="Keyset pagination")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OutboxList:
    rows = await list_outbox(svc.pool, status, limit, after_id)
    out = [OutboxOut(**dict(r)) for r in rows]
    return OutboxList(messages=out, next_after_id=out[-1].id if len(out) == limit else None)


@router.get(
    "/outbox/{outbox_id}",
    response_model=OutboxDetailOut,
    summary="One message, with its attempts and delivery status callbacks",
)
async def get_message(svc: Svc, _: Admin, outbox_id: OutboxId) -> OutboxDetailOut:
    got = await outbox_detail(svc.pool, outbox_id)
    if got is None:
        raise ApiError(404, f"no outbox row {outbox_id}")
    return OutboxDetailOut(
        **dict(got.row),
        delivery_attempts=[AttemptOut(**dict(a)) for a in got.attempts],
        status_log=[StatusLogOut(**dict(s)) for s in got.status_log],
    )


@router.post(
    "/outbox/{outbox_id}/retry",
    response_model=RetryOut,
    summary="Re-drive a dead letter (back to pending, a fresh attempt budget)",
)
async def retry(svc: Svc, _: Admin, outbox_id: OutboxId) -> RetryOut:
    status = await redrive(svc.pool, outbox_id)
    if status is None:
        raise ApiError(404, f"no outbox row {outbox_id}")
    if status != "dead":
        raise ApiError(409, f"outbox row {outbox_id} is {status}, not dead: nothing to re-drive")
    return RetryOut(id=outbox_id, status="pending")
