"""Customer profiles: declared attributes and consents in (`PUT /v1/customers/{id}`), the
assembled profile out (`GET /v1/customers/{id}/profile`), read from memory."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.api.ingest import IdempotencyKey, applied
from adapters.api.models import PENDING, ConsentIn, CustomerId
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.codecs.profile_doc import attributes_doc, consents_doc
from geo_engine.profile.attributes import (
    AGE_BANDS,
    CSP_LABELS,
    POSTCODE,
    Attributes,
    Consent,
    ConsentPurpose,
    Sex,
)

router = APIRouter(prefix="/v1", tags=["customers"], responses=ERROR_RESPONSES)
Writer = Annotated[Principal, Depends(require(Role.INGEST))]
Admin = Annotated[Principal, Depends(require())]
AgeBand = Literal["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
Csp = Literal["1", "2", "3", "4", "5", "6", "7", "8"]
assert set(get_args(AgeBand)) == set(AGE_BANDS) and set(get_args(Csp)) == set(CSP_LABELS)


class CustomerIn(BaseModel):
    """Socio-demographics replace what was stored (an omitted one becomes null); consents are
    merged per purpose, the latest `at` winning, and every statement is logged."""

    first_name: str | None = Field(None, min_length=1, max_length=64)
    age_band: AgeBand | None = None
    sex: Sex | None = None
    csp: Csp | None = Field(None, description="INSEE socio-professional group, 1-8")
    household_size: int | None = Field(None, ge=1, le=20)
    home_postcode: str | None = Field(None, description="French postcode, 5 digits")
    consents: dict[ConsentPurpose, ConsentIn] = Field(default_factory=dict)

    @field_validator("csp", mode="before")
    @classmethod
    def _csp_as_text(cls, v: object) -> object:
        # INSEE codes are digits: accept 3 as well as "3"
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("home_postcode")
    @classmethod
    def _postcode(cls, v: str | None) -> str | None:
        if v is not None and not POSTCODE.match(v):
            raise ValueError("not a French postcode (5 digits, 01000-98999)")
        return v


@router.put(
    "/customers/{customer_id}",
    summary="Set a customer's attributes and consents",
    responses=PENDING,
)
async def put_customer(
    customer_id: CustomerId,
    body: CustomerIn,
    request: Request,
    svc: Svc,
    principal: Writer,
    _key: IdempotencyKey = None,
) -> dict[str, Any]:
    attrs = Attributes(
        first_name=body.first_name,
        age_band=body.age_band,
        sex=body.sex,
        csp=body.csp,
        household_size=body.household_size,
        home_postcode=body.home_postcode,
    )
    consents = {p: Consent(c.status, c.at.timestamp(), c.source) for p, c in body.consents.items()}
    cmd = c.CustomerRecord(customer_id, attrs, consents)
    stored, merged = await applied(
        svc,
        request,
        principal,
        customer_id,
        cmd,
        tuple[Attributes, dict[ConsentPurpose, Consent]],
    )
    return {
        "customer_id": customer_id,
        "attributes": attributes_doc(stored),
        "consents": consents_doc(merged),
    }


@router.get("/customers/{customer_id}/profile", summary="A customer's assembled profile")
async def get_profile(customer_id: CustomerId, svc: Svc, _: Admin) -> dict[str, Any]:
    """From the memory of the customer's partition owner (asked over the bus: any API process
    answers what the owner holds now). Home and work areas are personal data: admin keys
    only. Velocity: `daily`
    lists each day's counts (oldest first, today last, UTC days from `daily_from`); the latest
    window takes today, the W-1 days before and (1 - edge_fraction) of day today-W; the previous
    one edge_fraction of that day, the W-1 days before it and (1 - edge_fraction) of day
    today-2W. `pct_change` is null when the previous window is empty (`new_activity` tells
    whether the latest is not)."""
    answer = await svc.bus.read(svc.ingest.partition(customer_id), customer_id.encode())
    doc: dict[str, Any] | None = json.loads(answer)
    if doc is None:
        raise ApiError(404, f"no profile for customer {customer_id!r}")
    return doc
