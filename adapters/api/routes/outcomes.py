"""Closing the loop (issue 6): `POST /v1/interactions` (the app reports a push opened or
clicked; ingest key), `POST /v1/redemptions` (the till redeems a code; staff key of that
store) and `GET /v1/redemptions` (admin; a staff key sees its stores' only). Queries in
adapters/db/outcomes.py."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ErrorBody, field_error
from adapters.auth import Principal, Role
from adapters.db.fence_repo import store_exists
from adapters.db.outcomes import (
    ALPHABET,
    CODE_LENGTH,
    Refusal,
    UnknownCursor,
    add_interactions,
    list_redemptions,
    message_owners,
    normalize_code,
    redeem,
)

router = APIRouter(prefix="/v1", tags=["outcomes"], responses=ERROR_RESPONSES)
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]
Staff = Annotated[Principal, Depends(require(Role.STAFF))]
MAX_INTERACTIONS = 1_000  # rows per POST /v1/interactions
_INT64 = 2**63 - 1


# --- interactions -----------------------------------------------------------------------------
class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: int = Field(
        ge=1, le=_INT64, description="The `message_id` of the push data (the outbox id)"
    )
    customer_id: str = Field(min_length=1, max_length=200, description="The message's customer")
    kind: Literal["opened", "clicked"] = Field(description="A click implies an open")
    ts: AwareDatetime = Field(description="Unix seconds, or ISO 8601 with an offset")


class RowReason(BaseModel):
    index: int
    reason: str


class RowRejected(BaseModel):
    index: int
    field: str
    reason: str
    status: int = Field(description="What this row alone would get: 422 invalid, 404 unknown")


class InteractionResult(BaseModel):
    accepted: int = Field(description="Rows newly recorded")
    duplicates: list[RowReason] = Field(description="Already recorded: counted once")
    rejected: list[RowRejected] = Field(description="Bad rows; the others still went through")


# inlined: openapi_extra does not register the item model under components
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "maxItems": MAX_INTERACTIONS,
            "items": InteractionIn.model_json_schema(),
        }
    },
}


def _batch(body: bytes) -> list[Any]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise field_error(422, "body", "not valid JSON") from None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise field_error(422, "items", 'give a list of interactions: {"items": [...]}')
    if len(items) > MAX_INTERACTIONS:
        raise field_error(413, "items", f"{len(items)} rows: at most {MAX_INTERACTIONS}")
    return items


@router.post(
    "/interactions",
    summary="Record push opens and clicks reported by the app",
    response_model=InteractionResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BATCH_SCHEMA}},
        }
    },
)
async def post_interactions(request: Request, svc: Svc, _: Ingest) -> InteractionResult:
    """Each row is checked alone: a bad one is reported (index, field, reason, status) and the
    good ones are stored. `message_id` must be a message sent to `customer_id`; a click also
    records an open; a (message, kind) already recorded is a duplicate, counted once."""
    items = _batch(await request.body())
    rejected: list[RowRejected] = []
    good: list[tuple[int, InteractionIn]] = []
    latest = time.time() + svc.settings.events_max_future_skew_s
    for i, raw in enumerate(items):
        try:
            row = InteractionIn.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ())) or "item"
            rejected.append(RowRejected(index=i, field=field, reason=str(err["msg"]), status=422))
            continue
        if row.ts.timestamp() > latest:
            rejected.append(RowRejected(index=i, field="ts", reason="in the future", status=422))
            continue
        good.append((i, row))
    owners = await message_owners(svc.pool, [r.message_id for _, r in good])
    stored: list[tuple[int, InteractionIn, str]] = []
    for i, row in good:
        owner = owners.get(row.message_id)
        if owner is None:
            reason = f"no message {row.message_id}"
            rejected.append(RowRejected(index=i, field="message_id", reason=reason, status=404))
        elif owner[0] != row.customer_id:
            reason = f"message {row.message_id} was not sent to this customer"
            rejected.append(RowRejected(index=i, field="customer_id", reason=reason, status=422))
        else:
            stored.append((i, row, owner[1]))
    # the reported rows first, then the opens clicks imply: a reported open's ts wins
    inserts = [(r.message_id, r.customer_id, c, r.kind, r.ts) for _, r, c in stored]
    inserts += [(r.message_id, r.customer_id, c, "opened", r.ts) for _, r, c in stored]
    new = await add_interactions(svc.pool, inserts)
    accepted = 0
    duplicates: list[RowReason] = []
    for i, row, _c in stored:
        pair = (row.message_id, row.kind)
        if pair in new:
            new.discard(pair)  # a second row for the same pair in this batch is a duplicate
            accepted += 1
        else:
            duplicates.append(RowReason(index=i, reason=f"{row.kind} already recorded"))
    rejected.sort(key=lambda e: e.index)
    return InteractionResult(accepted=accepted, duplicates=duplicates, rejected=rejected)


# --- redemptions ------------------------------------------------------------------------------
class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        min_length=1,
        max_length=64,
        description=f"As printed ({CODE_LENGTH} characters); case, spaces and dashes ignored",
    )
    store_id: str = Field(min_length=1, max_length=200, description="The till's store")
    amount: float | None = Field(None, ge=0, le=1e9, description="Basket value (revenue)")
    ts: AwareDatetime | None = Field(
        None, description="When redeemed (an offline till syncing later); default now"
    )


class RedemptionOut(BaseModel):
    code: str
    campaign_id: str
    offer_id: str
    store_id: str
    amount: float | None
    redeemed_at: datetime
    message_id: int = Field(description="The outbox id of the message that carried the code")


@router.post(
    "/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    summary="Redeem an offer's code at the till",
    responses={410: {"model": ErrorBody, "description": "The code expired"}},
)
async def post_redemption(body: RedemptionIn, svc: Svc, p: Staff) -> RedemptionOut:
    """Once per code: 404 unknown code, 409 already redeemed (when; and whether in this store),
    422 `store_id` outside the offer's stores, 410 expired, 403 a staff key of another store.
    Two tills redeeming one code at once: exactly one succeeds."""
    if not p.may_manage_store(body.store_id):
        raise field_error(403, "store_id", f"this key may not act for store {body.store_id!r}")
    now = time.time()
    if body.ts is not None and body.ts.timestamp() > now + svc.settings.events_max_future_skew_s:
        raise field_error(422, "ts", "in the future")
    code = normalize_code(body.code)
    if code is None:
        raise field_error(404, "code", f"no such code (codes are {CODE_LENGTH} characters)")
    if not await store_exists(svc.pool, body.store_id):
        raise field_error(422, "store_id", f"no geofence has store_id {body.store_id!r}")
    ts = body.ts or datetime.fromtimestamp(now, UTC)
    got = await redeem(svc.pool, code, body.store_id, body.amount, ts, p.key_id)
    if isinstance(got, Refusal):
        raise field_error(got.status, got.field, got.reason)
    return RedemptionOut(**_redemption(got))


def _redemption(r: Mapping[str, Any]) -> dict[str, Any]:
    """A redeemed code's row (redemption_codes) as RedemptionOut's fields."""
    return {
        "code": r["code"],
        "campaign_id": r["campaign_id"],
        "offer_id": r["offer_id"],
        "store_id": r["redeemed_store_id"],
        "amount": None if r["amount"] is None else float(r["amount"]),
        "redeemed_at": r["redeemed_at"],
        "message_id": r["outbox_id"],
    }


class RedeemedOut(RedemptionOut):
    customer_id: str | None = Field(description="Admin keys only (staff: null)")
    redeemed_by: str | None = Field(description="The API key id of the till")


class RedemptionList(BaseModel):
    redemptions: list[RedeemedOut]
    next_after: str | None = Field(None, description="Give as `after` for the next page")


@router.get("/redemptions", response_model=RedemptionList, summary="Redeemed codes, oldest first")
async def get_redemptions(
    svc: Svc,
    p: Staff,
    campaign_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    store_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="Redeemed from (UTC if naive)")] = None,
    after: Annotated[
        str | None,
        Query(
            pattern=f"^[{ALPHABET}]{{{CODE_LENGTH}}}$",
            description="The previous page's `next_after` (keyset pagination)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RedemptionList:
    """A staff key sees the redemptions made in its stores (403 for another `store_id`)."""
    stores: list[str] | None = None if store_id is None else [store_id]
    if p.role is Role.STAFF:
        if store_id is not None and not p.may_manage_store(store_id):
            raise field_error(403, "store_id", f"this key may not read store {store_id!r}")
        stores = stores or sorted(p.store_ids)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        rows = await list_redemptions(
            svc.pool,
            campaign_id=campaign_id,
            store_ids=stores,
            since=since,
            limit=limit,
            after=after,
        )
    except UnknownCursor:
        raise field_error(422, "after", "no such redemption in this listing") from None
    admin = p.role is Role.ADMIN
    out = [
        RedeemedOut(
            **_redemption(r),
            customer_id=r["customer_id"] if admin else None,
            redeemed_by=r["redeemed_by"],
        )
        for r in rows
    ]
    return RedemptionList(redemptions=out, next_after=out[-1].code if len(out) == limit else None)
