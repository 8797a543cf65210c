"""Offers: `POST/GET/PUT/DELETE /v1/offers` (admin). Content per channel, checked by the core at
save (placeholders, SMS segments), so a bad template is a 422 and never a broken message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from adapters.api.deps import Svc, campaign_repo, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.api.models import DefinitionId, Strict
from adapters.auth import Principal
from adapters.db.campaigns import Stored
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.gsm7 import sms_length
from geo_engine.decision.models import parse_campaign, parse_offer

router = APIRouter(prefix="/v1", tags=["offers"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]


class SmsIn(Strict):
    text: str = Field(min_length=1, max_length=1000, description="Template: {first_name}...")


class PushIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=1000)
    deep_link: str | None = Field(None, max_length=2000)


class ContentIn(Strict):
    sms: SmsIn | None = None
    push: PushIn | None = None


class OfferIn(Strict):
    id: DefinitionId
    name: str | None = Field(None, max_length=200)
    content: ContentIn
    valid_from: float = Field(description="Unix seconds")
    valid_until: float = Field(description="Unix seconds, after valid_from")
    store_ids: list[str] = Field(default_factory=list, description="Empty: every store")
    value: float = Field(ge=0, description="Worth of a redemption (EUR): ranks offers")
    category: str | None = Field(None, max_length=64, description="Matched to affinities")
    product: str | None = Field(None, max_length=200)
    redemption_cap: int | None = Field(None, ge=1, description="Offers issued at most")
    budget: float | None = Field(None, ge=0, description="Total value issued at most")


class SmsLengthOut(BaseModel):
    encoding: str
    units: int
    segments: int


class OfferOut(OfferIn):
    model_config = ConfigDict(extra="ignore")
    sms_length: SmsLengthOut | None = Field(None, description="Of the template as written")
    created_at: datetime
    updated_at: datetime


class OfferList(BaseModel):
    offers: list[OfferOut]


def out(s: Stored) -> OfferOut:
    sms = s.doc.get("content", {}).get("sms")
    length = None
    if sms:
        m = sms_length(sms["text"])
        length = SmsLengthOut(encoding=m.encoding, units=m.units, segments=m.segments)
    return OfferOut(**s.doc, sms_length=length, created_at=s.created_at, updated_at=s.updated_at)


def _check(doc: dict[str, Any]) -> None:
    try:
        parse_offer(doc)
    except InvalidDefinition as e:
        raise field_error(422, e.field, e.reason) from None


@router.post("/offers", status_code=201, response_model=OfferOut)
async def create_offer(body: OfferIn, svc: Svc, _: Admin) -> OfferOut:
    doc = body.model_dump(mode="json")
    _check(doc)
    s = await campaign_repo(svc).put_offer(body.id, doc, create=True)
    if s is None:
        raise field_error(409, "id", f"offer {body.id!r} exists")
    await svc.control.changed("campaigns")
    return out(s)


@router.get("/offers", response_model=OfferList)
async def list_offers(svc: Svc, _: Admin) -> OfferList:
    return OfferList(offers=[out(s) for s in await campaign_repo(svc).offers()])


@router.get("/offers/{offer_id}", response_model=OfferOut)
async def get_offer(offer_id: str, svc: Svc, _: Admin) -> OfferOut:
    for s in await campaign_repo(svc).offers():
        if s.id == offer_id:
            return out(s)
    raise ApiError(404, f"no offer {offer_id!r}")


@router.put("/offers/{offer_id}", response_model=OfferOut)
async def put_offer(offer_id: str, body: OfferIn, svc: Svc, _: Admin) -> OfferOut:
    if body.id != offer_id:
        raise field_error(422, "id", "must match the path")
    doc = body.model_dump(mode="json")
    _check(doc)
    # the campaigns that may give it must still make sense with the new content
    offers = {s.id: parse_offer(s.doc) for s in await campaign_repo(svc).offers()}
    offers[offer_id] = parse_offer(doc)
    users = set(await campaign_repo(svc).offer_in_use(offer_id))
    for c in await campaign_repo(svc).campaigns():
        if c.id in users:
            try:
                parse_campaign(c.doc, offers)
            except InvalidDefinition as e:
                raise field_error(422, "content", f"campaign {c.id}: {e.reason}") from None
    s = await campaign_repo(svc).put_offer(offer_id, doc, create=False)
    if s is None:
        raise ApiError(404, f"no offer {offer_id!r}")
    await svc.control.changed("campaigns")
    return out(s)


@router.delete("/offers/{offer_id}", status_code=204)
async def delete_offer(offer_id: str, svc: Svc, _: Admin) -> Response:
    users = await campaign_repo(svc).offer_in_use(offer_id)
    if users:
        raise field_error(409, "id", f"offer used by campaign(s) {', '.join(users)}")
    if not await campaign_repo(svc).delete_offer(offer_id):
        raise ApiError(404, f"no offer {offer_id!r}")
    await svc.control.changed("campaigns")
    return Response(status_code=204)
