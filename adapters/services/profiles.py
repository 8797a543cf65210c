"""The profile service: the in-memory profile state (geo_engine/profile), loaded from PostgreSQL
at start, fed by behavioural events and presence, written through.

Every change is planned on the pure state, stored in one transaction, and applied to memory
only once PostgreSQL committed (store visits are the exception: they run inside the presence
unit of work's transaction and apply at its end, so a commit failing after them leaves a visit
counted in memory until the next start). One lock serialises the writers.

What reacts to behavioural events and velocity crossings (decisions) is not wired in here: the
caller hands the reaction pipeline's step (adapters/services/reactions.py) to `ingest` and
`sweep`, and it runs inside their transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

import numpy as np

from adapters.services import places
from adapters.services.behaviour_events import EventsResult, Resolved, store_events
from adapters.services.live import LivePresence
from geo_engine.models import PresenceEvent
from geo_engine.ports import Transactions, Tx
from geo_engine.profile.attributes import (
    Attributes,
    Consent,
    ConsentPurpose,
    merge_consents,
)
from geo_engine.profile.config import DAY_S, ProfileConfig
from geo_engine.profile.events import BehaviouralEvent, EventType, kpis_of
from geo_engine.profile.places import PlacesConfig
from geo_engine.profile.ports import EventRecord, ProfileStore
from geo_engine.profile.profile import CustomerProfile, build_profile
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.state import Crossing, Plan, ProfileState
from geo_engine.profile.visits import visit_of

log = logging.getLogger(__name__)

# (event id, event) of the posted behavioural events newly stored
PostedEvents = list[tuple[str | None, BehaviouralEvent]]
# the reaction pipeline's steps (adapters/services/reactions.py), run inside the transaction
# that stores the events or crossings
BehaviourReaction = Callable[[Tx, PostedEvents, list[Crossing]], Awaitable[None]]
CrossingReaction = Callable[[Tx, list[Crossing]], Awaitable[None]]


class ProfileService:
    def __init__(
        self,
        store: ProfileStore,
        transactions: Transactions,
        cfg: ProfileConfig,
        places: PlacesConfig,
        live: LivePresence,
        *,
        sweep_interval_s: float = 300.0,
        rfm_refresh_s: float = 300.0,
        places_refresh_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.transactions = transactions
        self.cfg = cfg
        self.places_cfg = places
        self.live = live
        self.clock = clock
        self.state = ProfileState(cfg, ref=clock())
        self.lock = asyncio.Lock()
        self.sweep_interval_s = sweep_interval_s
        self.rfm_refresh_s = rfm_refresh_s
        self.places_refresh_s = places_refresh_s

    # --- start ------------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock()
        st = self.state
        horizon = 10 * max(self.cfg.category_half_life_days, self.cfg.channel_half_life_days)
        data = await self.store.load(
            counts_since=now - self.cfg.ring_days * DAY_S,
            affinity_since=now - horizon * DAY_S,
            ref=st.channel_decay.ref,
            channel_half_life_s=st.channel_decay.half_life_s,
            category_half_life_s=st.category_decay.half_life_s,
        )
        assert st.channel_decay.ref == st.category_decay.ref
        st.load_counts(data.counts, now)
        st.load_trends(data.trends)
        st.load_affinity(data.channels, data.categories)
        for cid, fig in data.rfm.items():
            st.set_rfm(cid, fig)
        st.refresh_scores(now)
        for cid, attrs in data.attributes.items():
            st.set_attributes(cid, attrs)
        for cid, consents in data.consents.items():
            st.set_consents(cid, consents)
        places.apply(
            self.state, data.place_cells, {k[0] for k in data.place_cells}, self.places_cfg
        )
        log.info("profiles loaded: %d customers, %d buyers", len(st), st.scorer.size)

    async def reload(self) -> None:
        """Memory from storage again (a partition owner whose partitions changed: what other
        owners wrote of its new customers is in storage only). The state is columnar: a new one
        is built and swapped, under the writers' lock."""
        async with self.lock:
            old = self.state
            self.state = ProfileState(self.cfg, ref=self.clock())
            try:
                await self.start()
            except BaseException:  # storage unreadable: keep what was held, not an empty state
                self.state = old
                raise

    # --- reading ----------------------------------------------------------------------------
    def profile(self, customer_id: str, now: float | None = None) -> CustomerProfile | None:
        """From memory: no database round trip (the decision path's read)."""
        return build_profile(self.state, customer_id, self.clock() if now is None else now)

    # --- behavioural events -----------------------------------------------------------------
    async def ingest(self, rows: Sequence[Resolved], react: BehaviourReaction) -> EventsResult:
        out = EventsResult()
        keep: list[Resolved] = []
        seen: set[str] = set()
        for r in rows:
            eid = r.row.event.event_id
            if r.customer_id in self.state.objecting:
                out.dropped.append((r.row.index, "objection: the customer objected to profiling"))
            elif eid is not None and eid in seen:
                out.duplicates.append((r.row.index, "event_id repeated in this batch"))
            else:
                if eid is not None:
                    seen.add(eid)
                keep.append(r)
        if not keep:
            return out
        async with self.lock:
            now = self.clock()
            known = len(self.state)
            try:
                async with self.transactions.transaction() as tx:
                    stored = await store_events(
                        self.store, tx, keep, out, self.cfg, self.state.sensitive
                    )
                    plan = self.state.plan([e for _, e in stored], now)
                    kinds = (EventType.PURCHASE, EventType.PURCHASE_CANCEL)
                    buyers = sorted({r.customer_id for r, _ in stored if r.row.type in kinds})
                    rfm = await self.store.rfm_of(tx, buyers)
                    crossings = await self._write_trends(tx, plan)
                    posted = [(r.row.event.event_id, e) for r, e in stored]
                    if posted or crossings:
                        await react(tx, posted, crossings)
            except BaseException:
                self.state.truncate(known)  # plan() gave the batch's new customers a slot
                raise
            self._apply(plan, rfm)
            self.refresh_scores(now)
        out.accepted = len(stored)
        out.signals = [] if plan.trends is None else plan.trends.crossings
        out.duplicates.sort()
        return out

    async def _write_trends(self, tx: Tx, plan: Plan) -> list[Crossing]:
        """Store the plan's velocity trends and crossings; return the crossings."""
        t = plan.trends
        if t is None:
            return []
        await self.store.upsert_trends(tx, t.rows(self.state.ids))
        await self.store.insert_signals(tx, t.crossings)
        return t.crossings

    def _apply(self, plan: Plan, rfm: dict[str, RfmFigures | None]) -> None:
        self.state.apply(plan)
        for cid, fig in rfm.items():
            self.state.set_rfm(cid, fig)

    # --- presence: store and competitor visits ----------------------------------------------
    async def record_visits(
        self, tx: Tx, stored: list[tuple[int, PresenceEvent]]
    ) -> list[Crossing]:
        """Store and competitor visits (geo_engine/profile/visits.py) of presence events just
        stored in `tx`; return the velocity crossings they caused. The presence event id is
        unique in behaviour_events, so a visit is never counted twice."""
        index = self.live.index
        events: list[tuple[int, BehaviouralEvent]] = []
        for pid, ev in stored:
            if ev.customer_id in self.state.objecting:
                continue
            pos = index.position(ev.geofence_id)
            visit = None if pos is None else visit_of(ev, index.fences[pos].kind)
            if visit is not None:
                events.append((pid, visit))
        if not events:
            return []
        async with self.lock:
            by_id = {pid: ev for pid, ev in stored}
            records = [
                EventRecord(
                    customer_id=e.customer_id,
                    type=str(e.type),
                    channel=str(e.channel),
                    ts=e.ts,
                    properties=json.dumps({"geofence_id": by_id[pid].geofence_id}),
                    kpis=[int(k) for k in kpis_of(e, self.state.sensitive)],
                    categories=None,
                    presence_event_id=pid,
                )
                for pid, e in events
            ]
            inserted = {p for _, _, p in await self.store.insert_events(tx, records)}
            new = [e for pid, e in events if pid in inserted]
            plan = self.state.plan(new, self.clock())
            crossings = await self._write_trends(tx, plan)
            self.state.apply(plan)
        return crossings

    # --- declared attributes and consents -------------------------------------------------
    async def put_customer(
        self,
        customer_id: str,
        attrs: Attributes,
        consents: dict[ConsentPurpose, Consent],
    ) -> tuple[Attributes, dict[ConsentPurpose, Consent]]:
        async with self.lock:
            async with self.transactions.transaction() as tx:
                at = await self.store.put_attributes(tx, customer_id, attrs)
                await self.store.put_consents(tx, customer_id, consents)
            stored = replace(attrs, updated_at=at)
            merged = merge_consents(self.state.consents.get(customer_id, {}), consents)
            self.state.set_attributes(customer_id, stored)
            self.state.set_consents(customer_id, merged)
        return stored, merged

    async def put_consents(
        self, customer_id: str, consents: dict[ConsentPurpose, Consent]
    ) -> dict[ConsentPurpose, Consent]:
        """Log the statements and merge them, the latest `at` winning per purpose; memory
        follows the commit at once (the location gate reads it)."""
        async with self.lock:
            async with self.transactions.transaction() as tx:
                await self.store.put_consents(tx, customer_id, consents)
            merged = merge_consents(self.state.consents.get(customer_id, {}), consents)
            self.state.set_consents(customer_id, merged)
        return merged

    # --- background: velocity sweep, RFM base, places ---------------------------------------
    async def sweep(
        self,
        react: CrossingReaction,
        now: float | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> list[Crossing]:
        """Every customer's velocity now: crossings caused by time passing alone. `owns`: only
        the customers of this owner's partitions (another owner sweeps the others)."""
        async with self.lock:
            clock = self.clock() if now is None else now
            slots = None
            if owns is not None:
                ids = self.state.ids
                slots = np.fromiter((s for s in range(len(ids)) if owns(ids[s])), np.int64)
            update = await asyncio.to_thread(self.state.sweep, clock, slots)
            if update.slots.size:
                async with self.transactions.transaction() as tx:
                    crossings = await self._write_trends(tx, Plan.of_trends(update))
                    if crossings:
                        await react(tx, crossings)
                self.state.apply_trends(update)
        return update.crossings

    def refresh_scores(self, now: float | None = None, *, force: bool = False) -> bool:
        """Re-take the RFM base when due: every rfm_refresh_s, or sooner once 5 % of the
        buyers changed."""
        st = self.state
        clock = self.clock() if now is None else now
        last = st.scorer.refreshed_at
        due = last is None or clock - last >= self.rfm_refresh_s
        many = st.scorer.changes > 0.05 * max(st.scorer.size, 20)
        if force or (st.scorer.changes and (due or many)):
            st.refresh_scores(clock)
            return True
        return False

    async def refresh_places(self, now: float | None = None) -> int:
        """Fold the raw fixes received since the last run into home/work evidence. Returns how
        many customers' places were recomputed."""
        return await places.refresh(
            self.store,
            self.transactions,
            self.state,
            self.places_cfg,
            self.clock() if now is None else now,
        )

    async def run_forever(
        self,
        react: CrossingReaction,
        tick_s: float = 30.0,
        *,
        owns: Callable[[str], bool] | None = None,
        fence: Callable[[], AbstractContextManager[None]] | None = None,
        places: Callable[[], bool] | None = None,
    ) -> None:
        """The periodic work. In a cluster: `owns` limits the sweep to this owner's customers,
        `fence()` scopes each write so it fails once a partition moved on, and `places()` says
        whether this process runs the places job (one process does, or cells count twice)."""
        next_sweep = next_places = self.clock()
        scope = fence or contextlib.nullcontext
        while True:
            await asyncio.sleep(tick_s)
            now = self.clock()
            try:
                self.refresh_scores(now)
                self.state.rebase(now)
                if now >= next_sweep:
                    next_sweep = now + self.sweep_interval_s
                    with scope():
                        await self.sweep(react, now, owns)
                if now >= next_places and (places is None or places()):
                    next_places = now + self.places_refresh_s
                    await self.refresh_places(now)
            except Exception:  # retried next tick; never kill the loop
                log.exception("profile background work failed")
