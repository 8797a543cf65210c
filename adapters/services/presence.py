"""The presence runtime: GPS fixes and the dwell/exit sweep, through the unit of work.

Each batch is one `PresenceUnitOfWork.transact`: applied to the engine, written with its raw
fixes, reacted to (adapters/services/reactions.py), committed or rolled back whole. The live
state it works on (engine, fence index, device links) is `LivePresence`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from adapters import metrics
from adapters.codecs.pings import DecodedPings, to_batch
from adapters.privacy.metrics import DROPPED
from adapters.services.live import UNLINKED_PREFIX, LivePresence
from adapters.services.unit_of_work import NO_CHANGE, Change, PresenceUnitOfWork
from geo_engine.models import FixFlag, PresenceEvent
from geo_engine.pipeline import BatchOutcome, run_batch
from geo_engine.ports import RawFix
from geo_engine.presence import PresenceEngine
from geofences.index import FenceIndex

log = logging.getLogger(__name__)

__all__ = ["UNLINKED_PREFIX", "IngestResult", "PresenceRuntime"]

# customer id -> None (may be located) or the reason not to (adapters/services/consent.py)
LocationGate = Callable[[str], str | None]


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
        live: LivePresence,
        uow: PresenceUnitOfWork,
        *,
        location_gate: LocationGate | None = None,
        keep_raw_fixes: bool = True,
        sweep_grace_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.uow = uow
        self.location_gate = location_gate
        self.keep_raw = keep_raw_fixes
        self.sweep_grace_s = sweep_grace_s
        self.clock = clock

    # what readers of the live state use, kept on the runtime they already hold
    @property
    def index(self) -> FenceIndex:
        return self.live.index

    @property
    def engine(self) -> PresenceEngine:
        return self.live.engine

    @property
    def device_links(self) -> dict[str, str]:
        return self.live.device_links

    def customer_for(self, device_id: str) -> str:
        return self.live.customer_for(device_id)

    async def reload_fences(self) -> None:
        await self.live.reload_fences()

    async def forget_fence(self, fence_id: str) -> None:
        """A deleted fence: its states go (the store already deleted their rows), no events."""

        def drop(engine: PresenceEngine) -> Change:
            engine.drop_fence(fence_id)
            return NO_CHANGE

        await self.uow.transact(drop)
        await self.live.reload_fences()

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
        outcome: BatchOutcome | None = None

        def apply(engine: PresenceEngine) -> Change:
            nonlocal outcome
            outcome = run_batch(batch, self.live.index, engine)
            raw: list[RawFix] = []
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
            return Change(outcome.events, raw)

        started = time.perf_counter()
        stored = await self.uow.transact(apply)
        assert outcome is not None
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.PINGS.labels("accepted").inc(len(rows))
        flags = [(decoded.row_index[i], f) for i, f in enumerate(outcome.flags) if f is not None]
        for _, f in flags:
            metrics.PING_FLAGS.labels(str(f)).inc()
        return IngestResult(len(rows), flags, stored, dropped)

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
        clock = self.clock() if now is None else now

        def due(engine: PresenceEngine) -> Change:
            return Change(engine.sweep(clock - self.sweep_grace_s))

        return await self.uow.transact(due)

    async def sweep_forever(
        self,
        interval_s: float,
        *,
        fence: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """`fence()` scopes each sweep (a partition owner's: its writes fail once a partition
        it swept moved to another owner)."""
        scope = fence or contextlib.nullcontext
        while True:
            await asyncio.sleep(interval_s)
            try:
                with scope():
                    await self.sweep()
            except Exception:  # a failed sweep is retried next tick; never kill the loop
                log.exception("presence sweep failed")
