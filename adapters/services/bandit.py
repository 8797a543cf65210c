"""The bandit's learning (ranking "bandit"): per (campaign, offer), the offers delivered over a
window and how many were redeemed or clicked, read from the campaign store (`arms`,
geo_engine/decision/ports.py) at start and every `interval_s` inside `serve`; the decision
service reads the latest snapshot (swapped whole, never mutated, so a decision in flight keeps
the one it started with)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from adapters.services.decisions import DecisionService
from geo_engine.decision.bandit import Snapshot
from geo_engine.decision.ports import Outcomes

log = logging.getLogger(__name__)


async def read_arms(store: Outcomes, since: float, now: float) -> Snapshot:
    """The arms' outcomes of offers delivered since `since` (unix seconds), from the campaign
    store (a pool: the PostgreSQL one on it, for the callers not yet given the port)."""
    outcomes = store
    return Snapshot(await outcomes.arms(since), now)


class BanditRefresher:
    def __init__(
        self,
        store: Outcomes,
        decisions: DecisionService,
        *,
        window_s: float,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.decisions = decisions
        self.window_s = window_s
        self.interval_s = interval_s
        self.clock = clock

    async def refresh(self) -> Snapshot:
        now = self.clock()
        snap = await read_arms(self.store, now - self.window_s, now)
        self.decisions.use_arms(snap)  # the swap: assignments, no await, no lock needed
        return snap

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                snap = await self.refresh()
                log.debug("bandit arms refreshed: %d arms", len(snap.arms))
            except Exception:  # keep the last snapshot; try again next round
                log.exception("bandit refresh failed")
