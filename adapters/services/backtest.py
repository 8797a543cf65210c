"""Backtest from storage: one campaign (whatever its status) replayed over the stored presence
events, behavioural events and velocity crossings (`velocity_signals`) of a time range, exactly
as the live hooks would have decided. Shared by `POST /v1/campaigns/{id}/backtest` and
`geo-engine backtest`.

Storage is the campaign store port (geo_engine/decision/ports.py), memory or PostgreSQL alike.
Events stream from its `replay` in chunks, oldest first (on PostgreSQL from a server-side
cursor, so a week of a city never sits in memory at once). Most rows
fire nothing: a presence row only moves the replayed presence unless its (type, fence, source)
fires the campaign, and only the events that fire it cost a decision. Profiles are read as they
are now (no profile history is kept; what of a customer does not move with time is read once
per replay, at the customer's first event: `ProfileSubject`). A behavioural event is located
from the replayed presence (the store fence the customer is inside at that moment); the latest
raw fix of the time is not kept, so `near_store_m` triggers only fire from inside a store in a
replay. A stored crossing becomes the trigger the live signal hook builds (`velocity_trigger`,
one function for both): no store, as live, so an offer scoped to stores does not serve it and
its would-be offers count under store "-". Only the crossings of the campaign's own (KPI,
direction) pairs are read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from adapters.services.decisions import DecisionService
from geo_engine.decision.backtest import BacktestResult, Replay, retarget
from geo_engine.decision.book import Book
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.models import Campaign, parse_campaign, parse_offer
from geo_engine.decision.ports import (
    EVENT,
    PRESENCE,
    CampaignStore,
    Catalogue,
    ReplayQuery,
    ReplayRow,
)
from geo_engine.decision.replay_subject import ProfileSubject
from geo_engine.decision.triggers import (
    event_instance,
    event_trigger,
    locate,
    needs_of,
    velocity_trigger,
)
from geo_engine.models import FenceState, PresenceEvent, PresenceEventType

CHUNK = 20_000  # rows per chunk of the replay


class NoCampaign(LookupError):
    pass


@dataclass
class BacktestRun:
    campaign_id: str
    events_read: int  # stored rows read (presence + behavioural events + velocity crossings)
    result: BacktestResult
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The API's and the CLI's JSON shape."""
        res = self.result
        return {
            "campaign_id": self.campaign_id,
            "events_read": self.events_read,
            "events": res.events,
            "offers": res.offers,
            "by_outcome": dict(res.by_outcome),
            "by_reason": dict(res.by_reason),
            "by_store": dict(res.by_store),
            "by_day": dict(sorted(res.by_day.items())),
            "by_channel": dict(res.by_channel),
            "by_offer": dict(res.by_offer),
            "seconds": round(self.seconds, 4),
            "events_per_s": round(self.events_per_s, 1),
        }


@dataclass(frozen=True)
class _Plan:
    campaign: Campaign
    book: Book
    presence: bool  # read presence events (presence triggers, or to locate behavioural ones)
    event_types: list[str]
    velocity: list[str]  # the "kpi:direction" of each velocity trigger

    def query(self, since: datetime, until: datetime) -> ReplayQuery:
        """What the replay reads: only the kinds of rows the campaign listens to."""
        return ReplayQuery(since, until, self.presence, self.event_types, self.velocity)


async def _plan(dec: DecisionService, campaign_id: str, store: Catalogue | None = None) -> _Plan:
    store = dec.repo if store is None else store
    stored = [s for s in await store.campaigns() if s.id == campaign_id]
    if not stored:
        raise NoCampaign(campaign_id)
    offers = {s.id: parse_offer(s.doc) for s in await store.offers()}
    campaign = parse_campaign({**stored[0].doc, "status": "live"}, offers)
    kinds = {t.kind for t in campaign.triggers}
    types = sorted({t.name for t in campaign.triggers if t.kind == "event"})
    vel = sorted({f"{t.kpi}:{t.name}" for t in campaign.triggers if t.kind == "velocity"})
    return _Plan(
        campaign, dec.book_of([campaign], offers), bool(kinds & {"presence", "event"}), types, vel
    )


async def count_events(
    dec: DecisionService,
    store: CampaignStore,
    campaign_id: str,
    since: datetime,
    until: datetime,
) -> int:
    """How many stored events a backtest of the campaign reads (for a progress bar)."""
    campaigns = store
    plan = await _plan(dec, campaign_id, campaigns)
    return await campaigns.replay_count(plan.query(since, until))


async def run_backtest(
    dec: DecisionService,
    store: CampaignStore,
    campaign_id: str,
    since: datetime,
    until: datetime,
    *,
    max_events: int = 10_000_000,
    chunk: int = CHUNK,
    on_chunk: Callable[[int], None] | None = None,
) -> BacktestRun:
    """Replay `campaign_id` over [since, until) from `store` (the campaign store; a pool: the
    PostgreSQL one on it); `on_chunk(rows)` after each chunk read. Raises NoCampaign."""
    campaigns = store
    plan = await _plan(dec, campaign_id, campaigns)
    suppressions = await campaigns.all_suppressions()
    replay = Replay(
        plan.book,
        campaign_id,
        ProfileSubject(dec.profiles.state, dec.cfg.default_timezone),
        lambda cid: suppressions.get(cid, _NONE),
        dec.cfg,
    )
    stream = _Stream(dec, plan)
    read = 0
    t0 = time.perf_counter()
    # closed on a failed replay too: the store may hold a connection for the stream
    rows = campaigns.replay(plan.query(since, until), limit=max_events, chunk=chunk)
    async with aclosing(rows):
        async for chunk_rows in rows:
            replay.feed(stream.triggers(chunk_rows), matched=True)
            read += len(chunk_rows)
            if on_chunk is not None:
                on_chunk(len(chunk_rows))
    return BacktestRun(campaign_id, read, replay.result, time.perf_counter() - t0)


class _Stream:
    """Rows (oldest first) to the triggers that fire the campaign, with the replayed presence
    that locates behavioural events (the store fence the customer is in). A row's kind is its
    `k` column, never guessed from its shape."""

    def __init__(self, dec: DecisionService, plan: _Plan) -> None:
        self.dec = dec
        self.book = plan.book
        self.needs = needs_of(t for t in plan.campaign.triggers if t.kind == "event")
        self.index = dec.live.index
        self.inside: dict[str, dict[str, FenceState]] = {}  # the replayed presence
        # what a presence event of this (type, fence, source) gives (`presence_trigger`: all
        # but the customer, time and instance follow from these), None when it does not fire
        # the campaign: most presence rows only move `inside`
        self.protos: dict[tuple[str, str, str], TriggerEvent | None] = {}

    def triggers(self, rows: Sequence[ReplayRow]) -> list[TriggerEvent]:
        dec, book, needs, index = self.dec, self.book, self.needs, self.index
        inside, protos = self.inside, self.protos
        out: list[TriggerEvent] = []
        # a row's kind says which of `ref` and `extra` hold a string (ReplayRow): unpacked as
        # such, without a check per row
        for k, rid, cid, ref, typ, ts, extra in cast(Sequence[_Row], rows):
            if k == PRESENCE:  # `extra`: its source
                here = inside.get(cid)
                if here is None:
                    here = inside[cid] = {}
                if typ == "exit":
                    here.pop(ref, None)
                elif ref not in here:
                    here[ref] = FenceState(entered_at=ts, last_inside_at=ts)
                key = (typ, ref, extra)
                proto = protos.get(key, _UNSEEN)
                if proto is None:
                    continue
                if proto is _UNSEEN:
                    ev = dec.presence_trigger(rid, PresenceEvent(_TYPES[typ], cid, ref, ts, extra))
                    proto = protos[key] = ev if book.candidates(ev) else None
                    if proto is None:
                        continue
                out.append(retarget(proto, cid, ts, f"pe:{rid}"))
            elif k == EVENT:
                store, in_store = locate(needs, inside.get(cid, _EMPTY), None, index, ts, 0.0)
                inst = event_instance(typ, ts, extra)  # `extra`: the event id
                ev = event_trigger(cid, typ, ts, inst, store, in_store=in_store)
                if book.candidates(ev):
                    out.append(ev)
            else:
                # a velocity crossing (`ref`: its figure, `typ`: its trend), read only for the
                # campaign's own pairs. `ts` is as_of stored to the microsecond: the instance's
                # second is live's unless as_of fell within half a microsecond below a second
                ev = velocity_trigger(cid, ref, typ, ts)
                if book.candidates(ev):
                    out.append(ev)
        return out


_Row = tuple[int, int, str, Any, str, float, Any]
_TYPES = {str(t): t for t in PresenceEventType}
_UNSEEN = TriggerEvent("presence", "", "", 0.0, "")  # a key not met yet
_EMPTY: dict[str, FenceState] = {}
_NONE: frozenset[str] = frozenset()
