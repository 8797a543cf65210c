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
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from adapters import metrics
from adapters.codecs.fix_columns import Fixes
from adapters.privacy.metrics import DROPPED
from adapters.services.live import UNLINKED_PREFIX, LivePresence
from adapters.services.unit_of_work import NO_CHANGE, Change, PresenceUnitOfWork
from geo_engine.models import FixFlag, PresenceEvent
from geo_engine.pipeline import BatchOutcome, run_batch
from geo_engine.presence import PresenceEngine
from geo_engine.presence_raw import RawFixColumns
from geofences.index import FenceIndex

log = logging.getLogger(__name__)

__all__ = ["UNLINKED_PREFIX", "IngestResult", "PresenceRuntime"]

# customer id -> None (may be located) or the reason not to (adapters/services/consent.py)
LocationGate = Callable[[str], str | None]


def raw_fixes(fixes: Fixes, flags: Sequence[FixFlag | None]) -> RawFixColumns:
    """What raw_fixes stores of a batch: every fix as received, with its flag, as the columns
    it came in (the store COPYs them without an object per fix)."""
    f = fixes.floats
    return RawFixColumns(
        fixes.customer_ids,
        fixes.device_ids,
        f("ts"),
        f("lat"),
        f("lon"),
        f("accuracy_m"),
        f("speed_mps"),
        f("heading"),
        fixes.mocks(),
        flags,  # a FixFlag is a str: encoded as its value
    )


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
        """A deleted fence: out of the index first (no new presence inside it; one edit, not a
        rebuild), then its states go (the store already deleted their rows), with no events."""
        await self.live.apply_fence_edit(fence_id)

        def drop(engine: PresenceEngine) -> Change:
            engine.drop_fence(fence_id)
            return NO_CHANGE

        await self.uow.transact(drop)

    async def ingest(self, fixes: Fixes) -> IngestResult:
        """One batch of fixes (customers resolved) through the presence pipeline, in one unit
        of work; flags and dropped rows by their index in the request."""
        dropped: list[tuple[int, str]] = []
        if self.location_gate is not None:
            fixes, dropped = self._gate(fixes, self.location_gate)
            if not len(fixes):
                return IngestResult(0, [], [], dropped)
        batch = fixes.batch()
        outcome: BatchOutcome | None = None

        def apply(engine: PresenceEngine) -> Change:
            nonlocal outcome
            outcome = run_batch(batch, self.live.index, engine)
            raw = raw_fixes(fixes, outcome.flags) if self.keep_raw else []
            return Change(outcome.events, raw)

        started = time.perf_counter()
        stored = await self.uow.transact(apply)
        assert outcome is not None
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.PINGS.labels("accepted").inc(len(fixes))
        index = fixes.indexes().tolist()
        flags = [(index[i], f) for i, f in enumerate(outcome.flags) if f is not None]
        # one labelled child per distinct flag, not per fix: a run of a backlog flags hundreds
        # of fixes, and `labels` costs a lock and a dict lookup each (3% of an owner's CPU)
        for f, n in Counter(f for _, f in flags).items():
            metrics.PING_FLAGS.labels(str(f)).inc(n)
        return IngestResult(len(fixes), flags, stored, dropped)

    @staticmethod
    def _gate(
        fixes: Fixes, gate: Callable[[str], str | None]
    ) -> tuple[Fixes, list[tuple[int, str]]]:
        """Rows whose customer may not be located are removed before anything sees them."""
        ids = fixes.customer_ids
        # once per customer: a run holds several fixes of most of them
        reason_of = {cid: gate(cid) for cid in set(ids)}
        if not any(reason_of.values()):
            return fixes, []
        reasons = [reason_of[cid] for cid in ids]
        index = fixes.indexes()
        dropped = [(int(index[i]), r) for i, r in enumerate(reasons) if r is not None]
        for _, r in dropped:
            DROPPED.labels("ping", r).inc()
        keep = np.array([i for i, r in enumerate(reasons) if r is None], np.intp)
        return fixes.take(keep), dropped

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
