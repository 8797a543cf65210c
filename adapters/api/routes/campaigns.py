"""Campaigns (`/v1/campaigns`) and suppression lists (`/v1/suppression-lists/{name}/entries`),
admin only. A campaign is type-checked by the core at save (triggers, conditions, offers that
exist, a possible window): 422 naming the path, nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, campaign_repo, decision_service, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.api.models import DefinitionId, Strict
from adapters.auth import Principal
from adapters.db.campaigns import Stored
from adapters.services.backtest import NoCampaign, run_backtest
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.models import parse_campaign, parse_offer

router = APIRouter(prefix="/v1", tags=["campaigns"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]


class TriggerIn(Strict):
    type: Literal["presence", "velocity", "event"]
    event: str | None = Field(
        None, description="presence: enter | dwell | exit; event: the behavioural event type"
    )
    fence_ids: list[str] = Field(default_factory=list, description="presence: any if empty")
    fence_kinds: list[str] = Field(default_factory=list, description="store | zone | competitor")
    sources: list[str] = Field(default_factory=list, description="gps | beacon | nfc")
    kpi: str | None = Field(None, description="velocity: store_visit, search, ..., interest")
    direction: str | None = Field(None, description="velocity: rising | falling")
    event_type: str | None = Field(None, description="event: a behavioural event type")
    in_store: bool = Field(False, description="event: only while inside a store")
    near_store_m: float | None = Field(
        None,
        gt=0,
        le=50_000,
        description="event: only when the last fix (fresh) is within this distance of a store",
    )


class EscalationIn(Strict):
    after_s: float = Field(
        ge=60, le=7 * 86400, description="Follow up when the offer got no open/click/redemption"
    )
    channels: list[Literal["push", "sms"]] = Field(
        min_length=1, max_length=2, description="Tried in order, minus the first offer's channel"
    )


class CampaignIn(Strict):
    id: DefinitionId
    name: str | None = Field(None, max_length=200)
    status: Literal["draft", "live", "paused"] = "draft"
    start: float = Field(description="Unix seconds")
    end: float = Field(description="Unix seconds, after start")
    priority: int = Field(0, ge=-1000, le=1000, description="Higher first; then expected value")
    triggers: list[TriggerIn] = Field(min_length=1, max_length=50)
    conditions: dict[str, Any] | None = Field(
        None, description='e.g. {"all": [{"field": "profile.segment", "op": "in", ...}]}'
    )
    offer_ids: list[str] = Field(min_length=1, max_length=50)
    channels: list[str] = Field(default_factory=lambda: ["push", "sms"])
    control_pct: float = Field(0.0, ge=0, le=50, description="Per-campaign control group, %")
    cooldown_s: float = Field(7 * 86400.0, ge=0, description="Re-eligibility of a customer")
    suppression_lists: list[str] = Field(default_factory=list)
    escalation: EscalationIn | None = Field(None, description="A follow-up on another channel")
    action: Literal["message", "call_center_task"] = Field(
        "message", description="call_center_task: a task for the call center, no message"
    )


class CampaignOut(BaseModel):
    id: str
    name: str | None
    status: str
    start: float
    end: float
    priority: int
    triggers: list[dict[str, Any]]
    conditions: dict[str, Any] | None
    offer_ids: list[str]
    channels: list[str]
    control_pct: float
    cooldown_s: float
    suppression_lists: list[str]
    escalation: dict[str, Any] | None = None
    action: str = "message"
    disabled_reason: str | None = Field(None, description="Why the engine disabled it")
    created_at: datetime
    updated_at: datetime


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]


class SuppressionIn(Strict):
    customer_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=100_000
    )


class SuppressionOut(BaseModel):
    list_name: str
    added: int


def out(s: Stored) -> CampaignOut:
    doc = {k: v for k, v in s.doc.items() if k in CampaignOut.model_fields}
    doc["status"] = s.status or doc.get("status", "draft")
    return CampaignOut(
        **doc,
        disabled_reason=s.disabled_reason,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


async def _doc(body: CampaignIn, svc: Svc) -> dict[str, Any]:
    doc = body.model_dump(mode="json", exclude_none=False)
    # triggers: drop unset keys so the core sees what the marketer wrote
    doc["triggers"] = [
        {k: v for k, v in t.items() if v not in (None, [], False) or k == "type"}
        for t in doc["triggers"]
    ]
    offers = {s.id: parse_offer(s.doc) for s in await campaign_repo(svc).offers()}
    try:
        parse_campaign(doc, offers)
    except InvalidDefinition as e:
        raise field_error(422, e.field, e.reason) from None
    return doc


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
async def create_campaign(body: CampaignIn, svc: Svc, _: Admin) -> CampaignOut:
    doc = await _doc(body, svc)
    s = await campaign_repo(svc).put_campaign(body.id, doc, create=True)
    if s is None:
        raise field_error(409, "id", f"campaign {body.id!r} exists")
    await svc.control.changed("campaigns")
    return out(s)


@router.get("/campaigns", response_model=CampaignList)
async def list_campaigns(
    svc: Svc, _: Admin, status: Annotated[str | None, Query()] = None
) -> CampaignList:
    return CampaignList(campaigns=[out(s) for s in await campaign_repo(svc).campaigns(status)])


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: str, svc: Svc, _: Admin) -> CampaignOut:
    for s in await campaign_repo(svc).campaigns():
        if s.id == campaign_id:
            return out(s)
    raise ApiError(404, f"no campaign {campaign_id!r}")


@router.put("/campaigns/{campaign_id}", response_model=CampaignOut)
async def put_campaign(campaign_id: str, body: CampaignIn, svc: Svc, _: Admin) -> CampaignOut:
    if body.id != campaign_id:
        raise field_error(422, "id", "must match the path")
    doc = await _doc(body, svc)
    s = await campaign_repo(svc).put_campaign(campaign_id, doc, create=False)
    if s is None:
        raise ApiError(404, f"no campaign {campaign_id!r}")
    await svc.control.changed("campaigns")
    return out(s)


@router.delete("/campaigns/{campaign_id}", status_code=204)
async def delete_campaign(campaign_id: str, svc: Svc, _: Admin) -> Response:
    if not await campaign_repo(svc).delete_campaign(campaign_id):
        raise ApiError(404, f"no campaign {campaign_id!r}")
    await svc.control.changed("campaigns")
    return Response(status_code=204)


@router.post("/suppression-lists/{name}/entries", status_code=201, response_model=SuppressionOut)
async def add_suppression_entries(
    name: Annotated[str, Field(min_length=1, max_length=64)],
    body: SuppressionIn,
    svc: Svc,
    _: Admin,
) -> SuppressionOut:
    added = await campaign_repo(svc).add_suppressed(name, body.customer_ids)
    return SuppressionOut(list_name=name, added=added)


class BacktestIn(Strict):
    since: datetime = Field(description="ISO 8601: replay presence events from this time")
    until: datetime = Field(description="ISO 8601, exclusive")
    max_events: int = Field(1_000_000, ge=1, le=10_000_000)


class BacktestOut(BaseModel):
    campaign_id: str
    events_read: int = Field(
        description="Stored presence and behavioural events and velocity crossings read"
    )
    events: int = Field(description="Events that fire the campaign's triggers")
    offers: int = Field(description="Would-be offers (send or held)")
    by_outcome: dict[str, int]
    by_reason: dict[str, int] = Field(description="The campaign's result per event")
    by_store: dict[str, int]
    by_day: dict[str, int]
    by_channel: dict[str, int]
    by_offer: dict[str, int] = Field(
        description="Which of the campaign's offers it would give (ranked as live, bandit included)"
    )
    seconds: float
    events_per_s: float


@router.post("/campaigns/{campaign_id}/backtest", response_model=BacktestOut)
async def backtest_campaign(campaign_id: str, body: BacktestIn, svc: Svc, _: Admin) -> BacktestOut:
    """Replay stored presence events through the campaign (whatever its status) exactly as
    live: same rules, its own would-be offers counting for pressure and cooldown. Nothing is
    sent or written. Profiles are read as they are now (no profile history is kept)."""
    # naive times are UTC (as in the CLI): comparing naive with aware would raise
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (body.since, body.until))
    if until <= since:
        raise field_error(422, "until", "must be after since")
    try:
        run = await run_backtest(
            decision_service(svc),
            svc.campaigns,
            campaign_id,
            since,
            until,
            max_events=body.max_events,
        )
    except NoCampaign:
        raise ApiError(404, f"no campaign {campaign_id!r}") from None
    return BacktestOut(**run.as_dict())
