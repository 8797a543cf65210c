"""`POST /v1/events`: behavioural events from web, app, CRM and POS back-ends (msgspec decoded;
the pydantic models only document the wire format), and `GET /v1/velocity-signals`."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.api.ingest import IdempotencyKey, Wait, result, submit
from adapters.api.models import Accepted, Identifier, IdentifierType
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.codecs.events import EventRow, decode_events
from adapters.codecs.pings import BatchError
from adapters.db.identities import PgIdentityDirectory
from adapters.db.velocity_signals import signals_after
from adapters.services.behaviour_events import EventsResult, Rejected, Resolved
from adapters.services.presence import UNLINKED_PREFIX
from geo_engine.profile.events import POSTED_TYPES, Channel
from geo_engine.profile.state import Crossing

router = APIRouter(prefix="/v1", tags=["events"], responses=ERROR_RESPONSES)
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]
Admin = Annotated[Principal, Depends(require())]


class IdentifierDoc(BaseModel):
    type: IdentifierType
    value: str


class EventInDoc(BaseModel):
    customer_id: str | None = Field(None, description="One of customer_id or identifier")
    identifier: IdentifierDoc | None = Field(
        None, description="Any linked identifier; an unlinked device is `device:<id>`"
    )
    event_id: str | None = Field(None, description="Idempotency key: recorded once")
    type: str = Field(description=", ".join(sorted(POSTED_TYPES)))
    ts: float | str = Field(description="Unix seconds, or ISO 8601 with an offset")
    channel: Channel
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description="By type: page_view {url, category?}; search {query, product_ids?}; "
        "product_view {product_id}; cart_add {product_id, quantity?}; purchase {order_id, "
        "amount >= 0, currency (ISO 4217), items: [{category, product_id?, quantity?, "
        "price?}]}; purchase_cancel {order_id}; any type may carry `category`",
    )


class EventBatchDoc(BaseModel):
    events: list[EventInDoc]


class _RowReason(msgspec.Struct):
    index: int
    reason: str


class _RowRejected(msgspec.Struct):
    index: int
    field: str
    reason: str
    status: int  # the HTTP status this row alone would get: 422 invalid, 404 unknown reference


class _Signal(msgspec.Struct):
    customer_id: str
    figure: str
    previous_trend: str
    trend: str
    latest: float
    previous: float
    pct_change: float | None
    window_days: int
    as_of: datetime


class _Result(msgspec.Struct):
    accepted: int
    duplicates: list[_RowReason]
    dropped: list[_RowReason]
    rejected: list[_RowRejected]
    signals: list[_Signal]


class EventBatchResult(BaseModel):
    accepted: int = Field(description="Rows stored (and counted)")
    duplicates: list[dict[str, Any]] = Field(
        description="Accepted, already recorded: index, reason"
    )
    dropped: list[dict[str, Any]] = Field(
        description="Not recorded by rule (customer objected to profiling): index, reason"
    )
    rejected: list[dict[str, Any]] = Field(description="Bad rows: index, field, reason, status")
    signals: list[dict[str, Any]] = Field(description="Velocity crossings this batch caused")


_encode = msgspec.json.Encoder().encode


def signal_out(c: Crossing) -> _Signal:
    return _Signal(
        c.customer_id,
        c.figure,
        c.previous_trend,
        c.trend,
        c.latest,
        c.previous,
        c.pct_change,
        c.window_days,
        datetime.fromtimestamp(c.as_of, UTC),
    )


async def _resolve(svc: Svc, rows: list[EventRow]) -> tuple[list[Resolved], list[Rejected]]:
    """customer_id as given; an identifier through its link. An unlinked device is its own
    customer `device:<id>` (as for pings); any other unlinked identifier is refused."""
    resolved: list[Resolved] = []
    rejected: list[Rejected] = []
    wanted: dict[str, list[tuple[EventRow, str]]] = defaultdict(list)
    for r in rows:
        if r.event.customer_id is not None:
            resolved.append(Resolved(r, r.event.customer_id))
            continue
        ident = r.event.identifier
        assert ident is not None
        try:
            norm = Identifier(type=ident.type, value=ident.value)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            field = f"identifier.{where}" if where else "identifier"
            rejected.append(Rejected(r.index, field, str(err.get("msg"))))
            continue
        wanted[str(norm.type)].append((r, norm.value))
    directory = PgIdentityDirectory(svc.pool)
    for type_, items in wanted.items():
        owners = await directory.customers_of(type_, [v for _, v in items])
        for r, value in items:
            owner = owners.get(value)
            if owner is None and type_ == IdentifierType.DEVICE:
                owner = UNLINKED_PREFIX + value
            if owner is None:
                reason = f"{type_} not linked to any customer (POST /v1/identities/link)"
                rejected.append(Rejected(r.index, "identifier", reason, 404))
            else:
                resolved.append(Resolved(r, owner))
    resolved.sort(key=lambda x: x.row.index)
    return resolved, rejected


@router.post(
    "/events",
    summary="Ingest a batch of behavioural events",
    status_code=202,
    response_model=Accepted,
    responses={200: {"model": EventBatchResult, "description": "With ?wait=true: applied"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatchDoc.model_json_schema()}},
        }
    },
)
async def post_events(
    request: Request,
    svc: Svc,
    principal: Ingest,
    _key: IdempotencyKey = None,
    wait: Wait = False,
) -> Response:
    """202 once durable in the log. With `?wait=true`, 200 once applied: good rows are
    stored even when others are rejected; a resent event_id, or a purchase whose order is
    already recorded, is a duplicate (not counted twice); events of a customer who objected to
    profiling are dropped and reported."""
    body = await request.body()
    s = svc.settings
    try:
        decoded = decode_events(
            body,
            max_batch=s.events_max_batch_size,
            now=time.time(),
            max_future_s=s.events_max_future_skew_s,
            max_age_s=s.events_max_past_age_s,
        )
    except BatchError as exc:
        raise field_error(exc.status, exc.field, exc.reason) from None
    resolved, rejected = await _resolve(svc, decoded.rows)
    parts: dict[int, c.Events] = {}
    for r in resolved:
        part = parts.setdefault(svc.ingest.partition(r.customer_id), c.Events([]))
        part.rows.append(c.EventWire.of(r))
    done = await submit(svc, request, principal, parts, wait=wait)
    bad = [_RowRejected(e.index, e.field, e.reason, 422) for e in decoded.errors]
    bad += [_RowRejected(e.index, e.field, e.reason, e.status) for e in rejected]
    if done.results is None or not wait:
        bad.sort(key=lambda e: e.index)
        accepted = _Accepted(len(resolved), bad, done.resent)
        return Response(_encode(accepted), 202, media_type="application/json")
    out = _Result(accepted=0, duplicates=[], dropped=[], rejected=bad, signals=[])
    for reply in done.results:
        res = result(reply, EventsResult)
        out.accepted += res.accepted
        out.duplicates += [_RowReason(i, r) for i, r in res.duplicates]
        out.dropped += [_RowReason(i, r) for i, r in res.dropped]
        out.rejected += [_RowRejected(e.index, e.field, e.reason, e.status) for e in res.rejected]
        out.signals += [signal_out(x) for x in res.signals]
    for rows in (out.duplicates, out.dropped, out.rejected):
        rows.sort(key=lambda e: e.index)
    return Response(_encode(out), media_type="application/json")


class _Accepted(msgspec.Struct):
    accepted: int
    rejected: list[_RowRejected]
    duplicate: bool = False


class _SignalPage(msgspec.Struct):
    signals: list[dict[str, Any]]
    next_after_id: int | None


@router.get("/velocity-signals", summary="Velocity crossings, oldest first")
async def velocity_signals(
    svc: Svc,
    _: Admin,
    after_id: Annotated[int, Query(ge=0)] = 0,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Every crossing into rising/falling stored, with `id` > `after_id` (poll with the last
    id seen): what campaigns trigger on."""
    rows = await signals_after(svc.pool, after_id, customer_id, limit)
    page = _SignalPage(rows, rows[-1]["id"] if len(rows) == limit else None)
    return Response(_encode(page), media_type="application/json")
