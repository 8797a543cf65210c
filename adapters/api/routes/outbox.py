"""`GET /v1/outbox?status=` and `POST /v1/outbox/{id}/retry` (admin): what the relay sent,
retried, expired or gave up on, and the re-drive of a dead letter."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.auth import Principal
from adapters.delivery.relay import list_outbox, redrive

router = APIRouter(prefix="/v1", tags=["delivery"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]
Status = Literal["pending", "sending", "sent", "failed", "expired", "dead"]


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


class OutboxList(BaseModel):
    messages: list[OutboxOut]
    next_after_id: int | None = None


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


@router.post(
    "/outbox/{outbox_id}/retry",
    response_model=RetryOut,
    summary="Re-drive a dead letter (back to pending, a fresh attempt budget)",
)
async def retry(
    svc: Svc, _: Admin, outbox_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> RetryOut:
    status = await redrive(svc.pool, outbox_id)
    if status is None:
        raise ApiError(404, f"no outbox row {outbox_id}")
    if status != "dead":
        raise ApiError(409, f"outbox row {outbox_id} is {status}, not dead: nothing to re-drive")
    return RetryOut(id=outbox_id, status="pending")
