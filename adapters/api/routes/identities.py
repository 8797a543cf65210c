"""Identity resolution: many identifiers (devices, app installs, cookies, phone, e-mail hash)
resolve to one customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, FieldError
from adapters.api.models import Identifier, IdentifierType
from adapters.auth import Principal, Role
from adapters.services.identity import IdentityConflict, IdentityService
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


def _service(request: Request) -> IdentityService:
    identities: IdentityService = request.app.state.services.identities
    return identities


def _pairs(body: LinkIn) -> list[tuple[str, str]]:
    pairs = [(str(i.type), i.value) for i in body.identifiers]
    if len(set(pairs)) != len(pairs):
        raise ApiError(422, "identifiers: duplicates in the list")
    return pairs


def _conflict(exc: IdentityConflict, status: int) -> ApiError:
    field = f"identifiers[{exc.index}]"
    return ApiError(
        status,
        f"{field}: {exc.reason}",
        [FieldError(field=field, reason=exc.reason, index=exc.index)],
    )


@router.post("/identities/link", response_model=LinkOut, summary="Link identifiers to a customer")
async def link(body: LinkIn, request: Request, _: Linker) -> LinkOut:
    """All or nothing. A device that pinged before being linked was its own customer
    (`device:<id>`): its presence state and history move to the customer, without duplicates."""
    try:
        result = await _service(request).link(body.customer_id, _pairs(body))
    except IdentityConflict as exc:
        raise _conflict(exc, 409) from None
    return LinkOut(
        customer_id=body.customer_id, linked=result.linked, merged_events=result.merged_events
    )


@router.post("/identities/unlink", response_model=UnlinkOut, summary="Unlink identifiers")
async def unlink(body: LinkIn, request: Request, _: Linker) -> UnlinkOut:
    try:
        n = await _service(request).unlink(body.customer_id, _pairs(body))
    except IdentityConflict as exc:
        raise _conflict(exc, 404 if "not linked" in exc.reason else 409) from None
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
