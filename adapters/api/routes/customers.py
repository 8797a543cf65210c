"""Customer profiles: declared attributes and consents in (`PUT /v1/customers/{id}`), the
assembled profile out (`GET /v1/customers/{id}/profile`), read from memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import h3
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.api.ingest import IdempotencyKey, applied
from adapters.api.models import PENDING, ConsentIn, CustomerId
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from geo_engine.profile.attributes import (
    AGE_BANDS,
    CSP_LABELS,
    POSTCODE,
    Attributes,
    Consent,
    ConsentPurpose,
    Sex,
)
from geo_engine.profile.profile import CustomerProfile
from geo_engine.profile.rfm import SEGMENT_RULES

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


def _ts(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def _attributes(a: Attributes | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "first_name": a.first_name,
        "age_band": a.age_band,
        "sex": None if a.sex is None else str(a.sex),
        "csp": None if a.csp is None else {"code": a.csp, "label": CSP_LABELS[a.csp]},
        "household_size": a.household_size,
        "home_postcode": a.home_postcode,
        "updated_at": _ts(a.updated_at),
    }


def _consents(c: dict[ConsentPurpose, Consent]) -> dict[str, Any]:
    return {
        str(p): {"status": str(x.status), "at": _ts(x.at), "source": x.source} for p, x in c.items()
    }


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
        "attributes": _attributes(stored),
        "consents": _consents(merged),
    }


RFM_DEFINITIONS = {
    "recency_days": "days since the last purchase not cancelled",
    "frequency": "orders (distinct order ids) not cancelled, whole history",
    "monetary_total": "sum of those orders in the base currency",
    "monetary_average": "monetary_total / orders with a known exchange rate",
    "scores": "quintiles 1-5 by mid-rank among all buyers (recency by last purchase time)",
    "fm": "ceil((f + m) / 2)",
}


def profile_json(p: CustomerProfile, weights: tuple[float, ...], resolution: int) -> dict[str, Any]:
    v = p.velocity
    rfm: dict[str, Any] | None = None
    if p.rfm is not None and p.rfm_scores is not None:
        sc = p.rfm_scores
        rfm = {
            "recency_days": round(p.rfm.recency_days(p.as_of), 3),
            "frequency": p.rfm.orders,
            "monetary_total": round(p.rfm.total, 2),
            "monetary_average": None if p.rfm.average is None else round(p.rfm.average, 2),
            "unconverted_orders": p.rfm.unconverted_orders,
            "first_purchase_at": _ts(p.rfm.first_ts),
            "last_purchase_at": _ts(p.rfm.last_ts),
            "scores": {
                "r": sc.r,
                "f": sc.f,
                "m": sc.m,
                "fm": sc.fm,
                "base_size": sc.base_size,
                "base_refreshed_at": _ts(sc.refreshed_at),
            },
            "definitions": RFM_DEFINITIONS,
        }
    rules = dict(SEGMENT_RULES)
    places: dict[str, Any] = {"h3_resolution": resolution, "home": None, "work": None}
    for pl in p.places:
        places[pl.kind] = {
            "h3": h3.int_to_str(pl.cell),
            "confidence": pl.confidence,
            "share": pl.share,
            "hours": pl.hours,
            "days": pl.days,
        }
    return {
        "customer_id": p.customer_id,
        "as_of": _ts(p.as_of),
        "attributes": _attributes(p.attributes),
        "consents": _consents(p.consents),
        "objections": {
            "processing": p.objects_to_processing,
            "direct_marketing": p.objects_to_direct_marketing,
        },
        "rfm": rfm,
        "segment": p.segment,
        "segment_rule": rules.get(p.segment, "no order yet"),
        "category_affinity": [
            {"category": a.name, "score": round(a.score, 4), "share": round(a.share, 4)}
            for a in p.categories
        ],
        "channel_affinity": {
            "channels": [
                {"channel": a.name, "score": round(a.score, 4), "share": round(a.share, 4)}
                for a in p.channels
            ],
            "preferred": p.preferred_channel,
        },
        "places": places,
        "velocity": {
            "window_days": v.window_days,
            "latest_window": {"from": _ts(v.latest_from), "to": _ts(v.as_of)},
            "previous_window": {"from": _ts(v.previous_from), "to": _ts(v.latest_from)},
            "daily_from": _ts(v.first_day_start),
            "edge_fraction": round(v.edge_fraction, 6),
            "figures": {
                f.name: {
                    "latest": round(f.latest, 3),
                    "previous": round(f.previous, 3),
                    "pct_change": None if f.pct_change is None else round(f.pct_change, 2),
                    "new_activity": f.new_activity,
                    "trend": f.trend,
                    "daily": v.daily_of(f.name, weights),
                }
                for f in v.figures
            },
        },
        "churn": {
            "risk": p.churn_risk,
            "signals": [
                {"kind": s.kind, "detail": s.detail, "latest": s.latest, "previous": s.previous}
                for s in p.churn
            ],
            "latest_window": {k: round(x[0], 3) for k, x in v.churn_counts.items()},
            "previous_window": {k: round(x[1], 3) for k, x in v.churn_counts.items()},
        },
    }


@router.get("/customers/{customer_id}/profile", summary="A customer's assembled profile")
async def get_profile(customer_id: CustomerId, svc: Svc, _: Admin) -> dict[str, Any]:
    """From memory. Home and work areas are personal data: admin keys only. Velocity: `daily`
    lists each day's counts (oldest first, today last, UTC days from `daily_from`); the latest
    window takes today, the W-1 days before and (1 - edge_fraction) of day today-W; the previous
    one edge_fraction of that day, the W-1 days before it and (1 - edge_fraction) of day
    today-2W. `pct_change` is null when the previous window is empty (`new_activity` tells
    whether the latest is not)."""
    p = svc.profiles.profile(customer_id)
    if p is None:
        raise ApiError(404, f"no profile for customer {customer_id!r}")
    s = svc.settings
    return profile_json(p, tuple(s.velocity_interest_weights), s.places_h3_resolution)
