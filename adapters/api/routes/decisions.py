"""`GET /v1/decisions?customer_id=&campaign_id=&since=` (admin): every decision with the reason
for each campaign considered, and its outbox row when an offer was given."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, campaign_repo, require
from adapters.api.errors import ERROR_RESPONSES
from adapters.auth import Principal

router = APIRouter(prefix="/v1", tags=["decisions"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]


class TraceOut(BaseModel):
    campaign_id: str
    offer_id: str | None
    score: float
    result: str
    steps: list[str]


class DecisionOut(BaseModel):
    id: int
    customer_id: str
    trigger_kind: str
    trigger_name: str
    trigger_instance: str
    presence_event_id: int | None
    fence_id: str | None = Field(
        None, description="The trigger's fence: entered, or the store a behavioural event was in"
    )
    ts: datetime
    outcome: str
    campaign_id: str | None
    offer_id: str | None
    channel: str | None
    send_after: datetime | None
    expires_at: datetime | None
    idempotency_key: str | None
    outbox_status: str | None
    traces: list[TraceOut]
    decided_at: datetime


class DecisionList(BaseModel):
    decisions: list[DecisionOut]


@router.get("/decisions", response_model=DecisionList)
async def list_decisions(
    svc: Svc,
    _: Admin,
    customer_id: Annotated[str | None, Query()] = None,
    campaign_id: Annotated[str | None, Query(description="Chosen or considered")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; trigger time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionList:
    rows = await campaign_repo(svc).decisions(customer_id, campaign_id, since, limit)
    out: list[DecisionOut] = []
    for r in rows:
        d: dict[str, Any] = dict(r)
        out.append(DecisionOut(**d))
    return DecisionList(decisions=out)
