"""Identity resolution: many identifiers (devices, app installs, cookies, phone, e-mail hash)
resolve to one customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.api.ingest import IdempotencyKey, applied
from adapters.api.models import PENDING, Identifier, IdentifierType
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.services.identity import LinkResult
from adapters.services.presence import UNLINKED_PREFIX

router = APIRouter(prefix="/v1", tags=["identities"], responses=ERROR_RESPONSES)
Linker = Annotated[Principal, Depends(require(Role.INGEST))]
Reader = Annotated[Principal, Depends(require())]
CustomerId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/]+$")]


class LinkIn(BaseModel):
    customer_id: CustomerId
    identifiers: list[Identifier] = Field(min_length=1, max_length=100)

    @field_validator("customer_id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.startswith(UNLINKED_PREFIX):
            raise ValueError(f"ids starting with {UNLINKED_PREFIX!r} are the engine's own")
        return v


class LinkOut(BaseModel):
    customer_id: str
    linked: int = Field(description="Newly linked (already linked ones are a no-op)")
    merged_events: int = Field(description="Presence events moved from linked devices")


class UnlinkOut(BaseModel):
    customer_id: str
    unlinked: int


class IdentifierOut(BaseModel):
    type: IdentifierType
    value: str
    linked_at: datetime


class CustomerIdentities(BaseModel):
    customer_id: str
    identifiers: list[IdentifierOut]


def _pairs(body: LinkIn) -> list[tuple[str, str]]:
    pairs = [(str(i.type), i.value) for i in body.identifiers]
    if len(set(pairs)) != len(pairs):
        raise ApiError(422, "identifiers: duplicates in the list")
    return pairs


@router.post(
    "/identities/link",
    response_model=LinkOut,
    summary="Link identifiers to a customer",
    responses=PENDING,
)
async def link(
    body: LinkIn, request: Request, svc: Svc, principal: Linker, _key: IdempotencyKey = None
) -> LinkOut:
    """All or nothing. A device that pinged before being linked was its own customer
    (`device:<id>`): its presence state and history move to the customer, without duplicates.
    Applied by the customer's partition owner; the device's next fixes go to that partition."""
    cmd = c.Link(body.customer_id, _pairs(body))
    result = await applied(svc, request, principal, body.customer_id, cmd, LinkResult)
    for t, v in cmd.pairs:  # this process routes the device's next fixes anew at once
        if t == "device":
            svc.live.device_links[v] = body.customer_id
    return LinkOut(
        customer_id=body.customer_id, linked=result.linked, merged_events=result.merged_events
    )


@router.post(
    "/identities/unlink", response_model=UnlinkOut, summary="Unlink identifiers", responses=PENDING
)
async def unlink(
    body: LinkIn, request: Request, svc: Svc, principal: Linker, _key: IdempotencyKey = None
) -> UnlinkOut:
    cmd = c.Unlink(body.customer_id, _pairs(body))
    n = await applied(svc, request, principal, body.customer_id, cmd, int)
    for t, v in cmd.pairs:
        if t == "device":
            svc.live.device_links.pop(v, None)
    return UnlinkOut(customer_id=body.customer_id, unlinked=n)


@router.get(
    "/customers/{customer_id}/identities",
    response_model=CustomerIdentities,
    summary="A customer's identifiers",
)
async def customer_identities(customer_id: str, svc: Svc, _: Reader) -> CustomerIdentities:
    from adapters.db.identities import PgIdentityDirectory

    rows = await PgIdentityDirectory(svc.pool).of_customer(customer_id)
    return CustomerIdentities(
        customer_id=customer_id,
        identifiers=[
            IdentifierOut(type=IdentifierType(t), value=v, linked_at=at) for t, v, at in rows
        ],
    )
