"""The presence runtime: live fence index, presence engine, and their write-through storage.

One process owns presence (DESIGN.md, "Past one machine": one owner per partition). Batches are
serialised by a lock. The engine's commit() hands over what changed; if PostgreSQL then fails to
commit it, engine.rollback() undoes that last commit, so memory always equals what is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters import metrics
from adapters.codecs.pings import DecodedPings, to_batch
from adapters.privacy.metrics import DROPPED
from geo_engine.models import FixFlag, PresenceConfig, PresenceEvent
from geo_engine.pipeline import run_batch
from geo_engine.ports import FenceRepository, PresenceCommit, PresenceStore, RawFix
from geo_engine.presence import PresenceEngine
from geofences.index import FenceIndex

log = logging.getLogger(__name__)

UNLINKED_PREFIX = "device:"


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    flags: list[tuple[int, FixFlag]]  # (request row index, flag)
    events: list[tuple[int, PresenceEvent]]  # (stored id, event)
    # (request row index, reason): refused by the location consent gate, neither processed
    # nor stored (adapters/services/consent.py); not counted in `accepted`
    dropped: list[tuple[int, str]] = field(default_factory=list)


class PresenceRuntime:
    def __init__(
        self,
        store: PresenceStore,
        fences: FenceRepository,
        config: PresenceConfig,
        *,
        h3_resolution: int = 11,
        keep_raw_fixes: bool = True,
        sweep_grace_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fences = fences
        self.engine = PresenceEngine(config)
        self.index = FenceIndex.build([], h3_resolution)
        self.resolution = h3_resolution
        self.keep_raw = keep_raw_fixes
        self.clock = clock
        self.sweep_grace_s = sweep_grace_s
        self.device_links: dict[str, str] = {}
        # customer id -> None (may process) or the reason not to; set by the composition root
        self.location_gate: Callable[[str], str | None] | None = None
        self.lock = asyncio.Lock()  # one batch at a time: memory moves with commits
        self._rebuild_lock = asyncio.Lock()
        self._fences_wanted = 0  # generation of fence changes asked for
        self._fences_built = 0  # generation the live index reflects

    async def start(self) -> None:
        await self.reload_fences()
        cursors, states = await self.store.load()
        self.engine.load(cursors, states)
        metrics.CUSTOMERS_INSIDE.set(self.engine.customers_inside())
        log.info(
            "presence loaded: %d fences, %d customers, %d inside",
            len(self.index),
            self.engine.active_customers(),
            self.engine.customers_inside(),
        )

    async def reload_fences(self) -> None:
        """Rebuild the index off the event loop, then swap it in one assignment.

        Rebuilds coalesce: a build takes seconds at 10 k fences, so changes made while one runs
        are all picked up by the next single build, not one build each."""
        self._fences_wanted += 1
        mine = self._fences_wanted
        async with self._rebuild_lock:
            if self._fences_built >= mine:
                return  # a build that started after this change already covers it
            target = self._fences_wanted
            fences = await self.fences.all()
            started = time.perf_counter()
            index = await asyncio.to_thread(FenceIndex.build, fences, self.resolution)
            metrics.INDEX_BUILD_SECONDS.observe(time.perf_counter() - started)
            self.index = index
            self._fences_built = target
            metrics.FENCES.set(len(index))

    async def forget_fence(self, fence_id: str) -> None:
        async with self.lock:
            self.engine.drop_fence(fence_id)
        await self.reload_fences()

    def customer_for(self, device_id: str) -> str:
        """A device not linked to a customer is its own customer until linked."""
        return self.device_links.get(device_id) or UNLINKED_PREFIX + device_id

    async def ingest(self, decoded: DecodedPings) -> IngestResult:
        customer_ids = [
            p.customer_id if p.customer_id is not None else self.customer_for(p.device_id or "")
            for p in decoded.rows
        ]
        dropped: list[tuple[int, str]] = []
        if self.location_gate is not None:
            decoded, customer_ids, dropped = self._gate(decoded, customer_ids, self.location_gate)
            if not decoded.rows:
                return IngestResult(0, [], [], dropped)
        rows = decoded.rows
        batch = to_batch(decoded, customer_ids)
        started = time.perf_counter()
        async with self.lock:
            self.engine.begin()
            try:
                outcome = run_batch(batch, self.index, self.engine)
                changes = self.engine.commit()  # rollback() below still undoes it
                raw: Sequence[RawFix] = ()
                if self.keep_raw:
                    raw = [
                        RawFix(
                            customer_id=cid,
                            device_id=p.device_id,
                            ts=t,
                            lat=p.lat,
                            lon=p.lon,
                            accuracy_m=p.accuracy_m,
                            speed_mps=p.speed_mps,
                            heading=p.heading,
                            mock=p.mock,
                            flag=None if f is None else str(f),
                        )
                        for cid, p, t, f in zip(
                            customer_ids, rows, decoded.ts, outcome.flags, strict=True
                        )
                    ]
                ids = await self.store.commit(
                    PresenceCommit(
                        cursors=changes.cursors,
                        states=changes.states,
                        events=outcome.events,
                        raw_fixes=raw,
                    )
                )
            except BaseException:
                self.engine.rollback()
                raise
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.PINGS.labels("accepted").inc(len(rows))
        flags = [(decoded.row_index[i], f) for i, f in enumerate(outcome.flags) if f is not None]
        for _, f in flags:
            metrics.PING_FLAGS.labels(str(f)).inc()
        self._count(outcome.events)
        return IngestResult(len(rows), flags, list(zip(ids, outcome.events, strict=True)), dropped)

    @staticmethod
    def _gate(
        decoded: DecodedPings, customer_ids: list[str], gate: Callable[[str], str | None]
    ) -> tuple[DecodedPings, list[str], list[tuple[int, str]]]:
        """Rows whose customer may not be located are removed before anything sees them."""
        reasons = [gate(cid) for cid in customer_ids]
        if not any(reasons):
            return decoded, customer_ids, []
        keep = [i for i, r in enumerate(reasons) if r is None]
        dropped = [(decoded.row_index[i], r) for i, r in enumerate(reasons) if r is not None]
        for _, r in dropped:
            DROPPED.labels("ping", r).inc()
        kept = DecodedPings(
            rows=[decoded.rows[i] for i in keep],
            row_index=[decoded.row_index[i] for i in keep],
            ts=[decoded.ts[i] for i in keep],
            errors=decoded.errors,
        )
        return kept, [customer_ids[i] for i in keep], dropped

    async def sweep(self, now: float | None = None) -> list[tuple[int, PresenceEvent]]:
        """Dwell and exits due by the clock (less the upload grace), with no new ping needed."""
        async with self.lock:
            self.engine.begin()
            try:
                clock = self.clock() if now is None else now
                events = self.engine.sweep(clock - self.sweep_grace_s)
                changes = self.engine.commit()  # rollback() below still undoes it
                ids: list[int] = []
                if events or changes.states or changes.cursors:
                    ids = await self.store.commit(
                        PresenceCommit(
                            cursors=changes.cursors, states=changes.states, events=events
                        )
                    )
            except BaseException:
                self.engine.rollback()
                raise
        self._count(events)
        return list(zip(ids, events, strict=True))

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried next tick; never kill the loop
                log.exception("presence sweep failed")

    def _count(self, events: Sequence[PresenceEvent]) -> None:
        for e in events:
            metrics.EVENTS.labels(str(e.type), e.source).inc()
        metrics.CUSTOMERS_INSIDE.set(self.engine.customers_inside())
