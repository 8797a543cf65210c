"""Stores and their live presence, in aggregate (the console's store list and live counts).

A store is what the live fences say it is (geofences/stores.py). Counts come from PostgreSQL
(adapters/db/store_presence.py), where each customer's owner commits, so every process gives
the same answer. Staff see their own stores only; nobody gets a customer id from here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Hashable
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, bearer_key, require
from adapters.api.errors import ERROR_RESPONSES, RETRY_AFTER_S, ApiError
from adapters.api.presence_feed import FeedClosed, PresenceFeed
from adapters.auth import Principal, Role
from adapters.composition import Services
from adapters.db.errors import UNAVAILABLE
from adapters.db.store_presence import latest_event_id, store_counts
from geofences.index import FenceIndex
from geofences.stores import StoreSite, store_sites, zone_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/stores", tags=["stores"], responses=ERROR_RESPONSES)
Reader = Annotated[Principal, Depends(require(Role.STAFF))]
StoreId = Annotated[str, Path(max_length=128, description="A store id named by its fences")]
_REFRESH_S = 30.0  # changes that write no presence event show within this (presence_feed.py)


class StoreOut(BaseModel):
    store_id: str
    name: str | None = Field(description="The store fence's name; null: the store has only zones")
    fences: int = Field(description="Fences carrying this store_id (store, zones, ...)")
    center: list[float] | None = Field(description="[lon, lat]: the mean of its fences' centroids")


class StoreList(BaseModel):
    stores: list[StoreOut]


class Today(BaseModel):
    """Presence events since local midnight, on the store's own fences (kind store; all its
    fences when it has none): a walk through two departments is still one store visit."""

    enter: int = 0
    dwell: int = 0
    exit: int = 0


class FenceInside(BaseModel):
    geofence_id: str
    name: str | None
    kind: str | None
    inside: int = Field(description="Customers inside this fence now")


class StorePresence(BaseModel):
    store_id: str
    inside: int = Field(description="Distinct customers inside any fence of the store now")
    today: Today
    fences: list[FenceInside]
    timezone: str = Field(description="The zone of 'today': a fence's, else the store's place's")
    at: datetime = Field(description="When this was read (UTC)")


_sites: list[tuple[FenceIndex, dict[str, StoreSite]]] = []  # the last index's stores


async def sites_of(index: FenceIndex) -> dict[str, StoreSite]:
    """The stores of the live index; computed once per index (it is immutable, swapped whole
    on every fence change), off the event loop: centroids of up to 100 k fences."""
    if _sites and _sites[0][0] is index:
        return _sites[0][1]
    sites = await asyncio.to_thread(store_sites, index.fences)
    _sites[:] = [(index, sites)]
    return sites


def _check(p: Principal, store_id: str) -> None:
    if not p.may_manage_store(store_id):  # before existence: staff learn nothing of others
        raise ApiError(403, f"this key may not read store {store_id!r}")


async def _site(svc: Services, store_id: str) -> StoreSite:
    site = (await sites_of(svc.runtime.index)).get(store_id)
    if site is None:
        raise ApiError(404, f"no store {store_id!r}: no live fence has this store_id")
    return site


@router.get("", response_model=StoreList, summary="Stores this key may see, from their fences")
async def list_stores(svc: Svc, p: Reader) -> StoreList:
    sites = await sites_of(svc.runtime.index)
    return StoreList(
        stores=[
            StoreOut(store_id=s.store_id, name=s.name, fences=len(s.fence_ids), center=[*s.center])
            for s in sites.values()
            if p.may_manage_store(s.store_id)
        ]
    )


class NoStore(Exception):
    """The store's last fence was deleted (while a stream watched it)."""


async def read_presence(svc: Services, store_id: str) -> StorePresence:
    """The store's aggregate now (NoStore: the store has no live fence any more)."""
    index = svc.runtime.index
    site = (await sites_of(index)).get(store_id)
    if site is None:
        raise NoStore(f"store {store_id!r} has no live fence any more")
    zone = zone_of(site)
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(zone).date(), dtime(0), zone)
    counts = await store_counts(
        svc.pool, site.fence_ids, site.store_fence_ids or site.fence_ids, midnight
    )
    fences = []
    for fence_id in site.fence_ids:
        pos = index.position(fence_id)
        fence = None if pos is None else index.fences[pos]
        fences.append(
            FenceInside(
                geofence_id=fence_id,
                name=None if fence is None else fence.name,
                kind=None if fence is None else str(fence.kind),
                inside=counts.by_fence.get(fence_id, 0),
            )
        )
    return StorePresence(
        store_id=store_id,
        inside=counts.inside,
        today=Today(**{k: v for k, v in counts.events.items() if k in Today.model_fields}),
        fences=fences,
        timezone=str(zone.key),
        at=now,
    )


@router.get(
    "/{store_id}/presence",
    response_model=StorePresence,
    summary="Customers inside the store now and today's enters, dwells and exits (aggregated)",
)
async def store_presence(store_id: StoreId, svc: Svc, p: Reader) -> StorePresence:
    _check(p, store_id)
    await _site(svc, store_id)
    try:
        return await read_presence(svc, store_id)
    except NoStore as exc:  # its last fence went between the two lines
        raise ApiError(404, str(exc)) from None


def _fingerprint(value: StorePresence) -> Hashable:
    return value.model_dump_json(exclude={"at"})


def _feed(request: Request, svc: Services) -> PresenceFeed[StorePresence]:
    """The app's one feed, made at its first stream."""
    feed: PresenceFeed[StorePresence] | None = getattr(request.app.state, "presence_feed", None)
    if feed is None:
        feed = PresenceFeed(
            lambda store_id: read_presence(svc, store_id),
            lambda: latest_event_id(svc.pool),
            _fingerprint,
            version=lambda: svc.runtime.index,  # swapped whole on every fence change
            interval_s=svc.settings.presence_stream_interval_s,
            refresh_s=_REFRESH_S,
        )
        request.app.state.presence_feed = feed
    return feed


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


# what ends a stream with `event: error` (anything else is a bug: the 500 path, logged)
_ENDING: tuple[type[Exception], ...] = (*UNAVAILABLE, FeedClosed, NoStore)


def _reason(exc: Exception) -> dict[str, Any]:
    """The `event: error` data: what happened, and when to reconnect (null: do not)."""
    if isinstance(exc, FeedClosed):
        return {"detail": "the server is stopping: reconnect", "retry_after": RETRY_AFTER_S}
    if isinstance(exc, NoStore):
        return {"detail": str(exc), "retry_after": None}
    log.warning("live presence stream: database unavailable: %s", type(exc).__name__)
    return {"detail": "the database is unreachable: reconnect", "retry_after": RETRY_AFTER_S}


async def _stream(
    svc: Services, feed: PresenceFeed[StorePresence], store_id: str, key: str | None
) -> AsyncIterator[str]:
    cfg = svc.settings
    ends = time.monotonic() + cfg.presence_stream_max_s
    async with feed.watch(store_id) as sub:
        try:
            first = await read_presence(svc, store_id)
            sub.sent(first)
            yield _event("presence", first.model_dump(mode="json"))
            while (left := ends - time.monotonic()) > 0:
                value = await sub.next(min(cfg.presence_stream_keepalive_s, left))
                if key is None or await svc.keys.principal(key) is None:
                    # revoked while the stream is open (the key ring's cache: within seconds)
                    yield _event("error", {"detail": "API key revoked", "retry_after": None})
                    return
                if value is not None:
                    yield _event("presence", value.model_dump(mode="json"))
                elif time.monotonic() < ends:
                    yield ": keepalive\n\n"  # an idle stream: proxies keep it open
        except _ENDING as exc:
            yield _event("error", _reason(exc))


_STREAM_DOC = (
    "Server-sent events: `event: presence` with the JSON of GET .../presence at once, then at"
    " each change (checked every GEO_ENGINE_PRESENCE_STREAM_INTERVAL_S); `: keepalive` when idle"
    " for GEO_ENGINE_PRESENCE_STREAM_KEEPALIVE_S. `event: error` with {detail, retry_after}"
    " (database unreachable, server stopping, store gone), then the stream ends; it also ends"
    " after GEO_ENGINE_PRESENCE_STREAM_MAX_S: reconnect."
)


@router.get(
    "/{store_id}/presence/stream",
    response_class=StreamingResponse,
    summary="The store's live presence as server-sent events",
    description=_STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def store_presence_stream(
    store_id: StoreId, request: Request, svc: Svc, p: Reader
) -> StreamingResponse:
    _check(p, store_id)
    await _site(svc, store_id)
    key = bearer_key(request.headers.get("authorization"))
    return StreamingResponse(
        _stream(svc, _feed(request, svc), store_id, key),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
