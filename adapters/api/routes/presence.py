"""Reading presence: where a customer is now, and the event history (keyset-paginated)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.api.models import PresenceEventOut, event_out
from adapters.auth import Principal, Role
from adapters.codecs.pings import parse_ts
from geo_engine.models import PresenceEventType
from geo_engine.ports import EventQuery

router = APIRouter(prefix="/v1", tags=["presence"], responses=ERROR_RESPONSES)
Reader = Annotated[Principal, Depends(require(Role.STAFF))]


class InsideFence(BaseModel):
    geofence_id: str
    name: str | None
    kind: str | None
    store_id: str | None
    since: datetime
    last_inside_at: datetime
    dwelling: bool


class CustomerPresence(BaseModel):
    customer_id: str
    inside: list[InsideFence]


class EventPage(BaseModel):
    events: list[PresenceEventOut]
    next_cursor: str | None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@router.get(
    "/customers/{customer_id}/presence",
    response_model=CustomerPresence,
    summary="Fences the customer is in, since when",
)
async def customer_presence(customer_id: str, svc: Svc, p: Reader) -> CustomerPresence:
    inside = []
    index = svc.runtime.index  # the live fences, in memory: no query per fence
    for fence_id, st in await svc.presence.presence_of(customer_id):
        pos = index.position(fence_id)
        fence = None if pos is None else index.fences[pos]
        store = None if fence is None else fence.store_id
        if p.role is Role.STAFF and store not in p.store_ids:
            continue  # staff see presence in their own stores only
        inside.append(
            InsideFence(
                geofence_id=fence_id,
                name=None if fence is None else fence.name,
                kind=None if fence is None else str(fence.kind),
                store_id=store,
                since=_dt(st.entered_at),
                last_inside_at=_dt(st.last_inside_at),
                dwelling=st.dwell_fired,
            )
        )
    return CustomerPresence(customer_id=customer_id, inside=inside)


def _cursor_out(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"pe:{last_id}".encode()).decode().rstrip("=")


def _cursor_in(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, value = raw.split(":", 1)
        if tag != "pe" or not value.isdigit():
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise field_error(422, "cursor", "not a cursor returned by this endpoint") from None


@router.get("/presence-events", response_model=EventPage, summary="Presence events, oldest first")
async def presence_events(
    svc: Svc,
    p: Reader,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    geofence_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[str | None, Query(description="ISO 8601 with offset, or unix seconds")] = None,
    type: PresenceEventType | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> EventPage:
    if geofence_id is not None:
        fence = await svc.fences.get(geofence_id)
        if fence is None:
            raise field_error(404, "geofence_id", f"no geofence {geofence_id!r}")
        if not p.may_manage_store(fence.store_id):
            raise field_error(403, "geofence_id", "this key may not read that store's events")
    elif p.role is Role.STAFF:
        raise field_error(403, "geofence_id", "staff keys must name one of their store's fences")
    since_ts = None
    if since is not None:
        try:
            since_ts = parse_ts(float(since) if _is_number(since) else since)
        except ValueError as exc:
            raise field_error(422, "since", str(exc)) from None
    q = EventQuery(
        customer_id=customer_id,
        geofence_id=geofence_id,
        type=type,
        since=since_ts,
        after_id=0 if cursor is None else _cursor_in(cursor),
        limit=limit + 1,
    )
    found = await svc.presence.events(q)
    page = found[:limit]
    return EventPage(
        events=[event_out(se.id, se.event) for se in page],
        next_cursor=_cursor_out(page[-1].id) if len(found) > limit else None,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
