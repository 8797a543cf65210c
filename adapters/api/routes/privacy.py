"""Privacy routes (issue 8): consents per purpose, the customer's export (art. 15) and erasure
(art. 17), and the audit log of changes made by staff and admin keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.api.ingest import IdempotencyKey, applied
from adapters.api.models import PENDING, ConsentIn, CustomerId
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.db.audit import entries_after
from adapters.privacy.export import export_customer
from geo_engine.profile.attributes import Consent, ConsentPurpose

router = APIRouter(prefix="/v1", tags=["privacy"], responses=ERROR_RESPONSES)
Writer = Annotated[Principal, Depends(require(Role.INGEST))]
Admin = Annotated[Principal, Depends(require())]


class ConsentOut(BaseModel):
    status: str
    at: datetime
    source: str


class ConsentsOut(BaseModel):
    customer_id: str
    consents: dict[str, ConsentOut] = Field(description="The current statement per purpose")


@router.put(
    "/customers/{customer_id}/consents",
    summary="Record a customer's consents per purpose (location, sms, push, email, ...)",
    response_model=ConsentsOut,
    responses=PENDING,
)
async def put_consents(
    customer_id: CustomerId,
    body: dict[ConsentPurpose, ConsentIn],
    request: Request,
    svc: Svc,
    principal: Writer,
    _key: IdempotencyKey = None,
) -> ConsentsOut:
    """Merged per purpose, the latest `at` winning; every statement is logged (consent_log).
    Takes effect at once: the location gate reads the profile service's memory. An unlinked
    device's app records its own opt-in here as `device:<device_id>`."""
    new = {p: Consent(c.status, c.at.timestamp(), c.source) for p, c in body.items()}
    cmd = c.Consents(customer_id, new)
    merged = await applied(svc, request, principal, customer_id, cmd, dict[ConsentPurpose, Consent])
    return ConsentsOut(
        customer_id=customer_id,
        consents={
            str(p): ConsentOut(
                status=str(c.status), at=datetime.fromtimestamp(c.at, UTC), source=c.source
            )
            for p, c in merged.items()
        },
    )


@router.get(
    "/customers/{customer_id}/export",
    summary="Everything held on a customer, one JSON document (GDPR art. 15)",
)
async def export(customer_id: CustomerId, svc: Svc, _: Admin) -> dict[str, Any]:
    """Every row of every table naming the customer (or one of their devices), table by
    table; the linked devices' former `device:` ids included."""
    doc = await export_customer(svc.pool, customer_id)
    if doc is None:
        raise ApiError(404, f"nothing is held on customer {customer_id!r}")
    return doc


class ErasureOut(BaseModel):
    customer_id: str
    rows: dict[str, int] = Field(description="Rows deleted per table")


@router.delete(
    "/customers/{customer_id}",
    summary="Erase every trace of a customer (GDPR art. 17)",
    response_model=ErasureOut,
    responses=PENDING,
)
async def erase(
    customer_id: CustomerId, request: Request, svc: Svc, principal: Admin
) -> ErasureOut:
    """Profile, consents, identities, events, presence, raw fixes, decisions, outbox rows,
    redemption codes: every table with a customer_id (or the customer's device_id) column.
    Only anonymous counts remain. 404 when nothing was held."""
    # through the customer's partition owner: nothing of theirs is applied after it
    rows = await applied(svc, request, principal, customer_id, c.Erase(customer_id), dict[str, int])
    if not any(rows.values()):
        raise ApiError(404, f"nothing is held on customer {customer_id!r}")
    return ErasureOut(customer_id=customer_id, rows={t: n for t, n in rows.items() if n})


class AuditEntry(BaseModel):
    id: int
    at: datetime
    key_id: str
    role: str
    method: str
    route: str
    path: str = Field(description="The path, a customer id masked as {customer_id}")
    status: int


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_after_id: int | None = Field(description="Pass as after_id for the next page")


@router.get("/audit-log", summary="Changes made by staff and admin keys, oldest first")
async def audit_log(
    svc: Svc,
    _: Admin,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    rows = await entries_after(svc.pool, after_id=after_id, limit=limit + 1)
    page = [AuditEntry(**r) for r in rows[:limit]]
    return AuditPage(items=page, next_after_id=page[-1].id if len(rows) > limit else None)
