"""`GET /v1/campaigns/{id}/results` (admin): a campaign's messages, interactions, redemptions
and measured uplift against its control group and the global holdout (adapters/db/results.py
says what is counted and how conversion is defined)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.auth import Principal
from adapters.db.results import Group, campaign_exists, group_counts, message_counts, uplift

router = APIRouter(prefix="/v1", tags=["campaigns"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]


class MessageCounts(BaseModel):
    messages: int = Field(description="Outbox rows (offers decided to be sent)")
    sent: int = Field(description="Accepted by the gateway")
    delivered: int | None = Field(description="Delivery receipts; null: not tracked")
    failed: int = Field(description="Dead letters")
    expired: int
    pending: int = Field(description="Not sent yet (waiting, being sent, retrying)")
    opened: int = Field(description="Messages opened (a click counts as an open)")
    clicked: int
    codes_issued: int
    redeemed: int
    revenue: float = Field(description="Sum of the amounts entered at redemption")


class GroupOut(BaseModel):
    decisions: int
    customers: int = Field(description="Distinct customers with a decision in this group")
    converters: int = Field(description="Of whom ordered within attribution_days after one")
    rate: float | None = Field(description="converters / customers; null when empty")


class UpliftOut(BaseModel):
    absolute: float | None = Field(description="rate(treated) - rate(base)")
    relative: float | None = Field(description="absolute / rate(base)")
    ci95_low: float | None
    ci95_high: float | None
    p_value: float | None = Field(description="Two-sided, pooled two-proportion z-test")


class ResultsOut(BaseModel):
    campaign_id: str
    since: datetime | None
    until: datetime | None
    attribution_days: int
    totals: MessageCounts
    by_channel: dict[str, MessageCounts]
    groups: dict[str, GroupOut] = Field(description="treated (send, held), control, holdout")
    uplift_vs_control: UpliftOut
    uplift_vs_holdout: UpliftOut
    conversion: str = Field(description="How a conversion is counted")


def _utc(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo is not None else t.replace(tzinfo=UTC)


def _group(g: Group) -> GroupOut:
    return GroupOut(
        decisions=g.decisions, customers=g.customers, converters=g.converters, rate=g.rate
    )


@router.get(
    "/campaigns/{campaign_id}/results",
    response_model=ResultsOut,
    summary="A campaign's results: delivery, interactions, redemptions, uplift",
)
async def campaign_results(
    svc: Svc,
    _: Admin,
    campaign_id: Annotated[str, Path(max_length=200)],
    since: Annotated[datetime | None, Query(description="Decisions from (UTC if naive)")] = None,
    until: Annotated[datetime | None, Query(description="Decisions before")] = None,
    attribution_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> ResultsOut:
    """Counts over the campaign's decisions made in [since, until); the uplift compares the
    conversion rate of the customers who were sent the offer with the control group and with
    the global holdout, with a 95 % interval (null when a group is empty)."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and until <= since:
        raise field_error(422, "until", "must be after since")
    if not await campaign_exists(svc.pool, campaign_id):
        raise field_error(404, "campaign_id", f"no campaign {campaign_id!r}")
    totals, by_channel = await message_counts(svc.pool, campaign_id, since, until)
    groups = await group_counts(svc.pool, campaign_id, since, until, attribution_days)
    return ResultsOut(
        campaign_id=campaign_id,
        since=since,
        until=until,
        attribution_days=attribution_days,
        totals=MessageCounts(**totals),
        by_channel={k: MessageCounts(**v) for k, v in sorted(by_channel.items())},
        groups={k: _group(g) for k, g in groups.items()},
        uplift_vs_control=UpliftOut(**uplift(groups["treated"], groups["control"])),
        uplift_vs_holdout=UpliftOut(**uplift(groups["treated"], groups["holdout"])),
        conversion=f"a non-cancelled order within {attribution_days} days after a decision",
    )
