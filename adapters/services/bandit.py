"""The bandit's learning (ranking "bandit"): per (campaign, offer), the offers delivered over a
window and how many were redeemed or clicked, read from PostgreSQL at start and every
`interval_s` inside `serve`; the decision service reads the latest snapshot (swapped whole,
never mutated, so a decision in flight keeps the one it started with)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from adapters.services.decisions import DecisionService
from geo_engine.decision.bandit import ArmKey, ArmStats, Snapshot

log = logging.getLogger(__name__)

# Delivered = the relay sent it, or its code was redeemed (proof enough). Pending, expired and
# dead rows never reached the customer: not a miss. A click counts only without a redemption
# (the redemption says more). One row per outbox row: the code and the click are unique per row.
_ARMS = """
SELECT o.campaign_id, o.offer_id,
       count(*) AS sent,
       count(r.redeemed_at) AS redeemed,
       count(*) FILTER (WHERE r.redeemed_at IS NULL AND i.outbox_id IS NOT NULL) AS clicked
  FROM outbox o
  LEFT JOIN redemption_codes r ON r.outbox_id = o.id
  LEFT JOIN interactions i ON i.outbox_id = o.id AND i.kind = 'clicked'
 WHERE (o.status = 'sent' OR r.redeemed_at IS NOT NULL)
   AND coalesce(o.sent_at, o.send_after) >= $1
 GROUP BY o.campaign_id, o.offer_id
"""


async def read_arms(pool: asyncpg.Pool, since: float, now: float) -> Snapshot:
    """The arms' outcomes of offers delivered since `since` (unix seconds)."""
    rows = await pool.fetch(_ARMS, datetime.fromtimestamp(since, UTC))
    arms: dict[ArmKey, ArmStats] = {
        (r["campaign_id"], r["offer_id"]): ArmStats(r["sent"], r["redeemed"], r["clicked"])
        for r in rows
    }
    return Snapshot(arms, now)


class BanditRefresher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        decisions: DecisionService,
        *,
        window_s: float,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.decisions = decisions
        self.window_s = window_s
        self.interval_s = interval_s
        self.clock = clock

    async def refresh(self) -> Snapshot:
        now = self.clock()
        snap = await read_arms(self.pool, now - self.window_s, now)
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
