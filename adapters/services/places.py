"""Home and work areas: raw fixes folded into decayed H3-cell evidence, off the hot path.

A periodic reader (ProfileService.run_forever) takes the raw fixes committed since its cursor,
skips customers who refused location or objected to profiling, and stores the evidence; the
chosen cells go into the in-memory profile state.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np

from geo_engine.ports import Transactions
from geo_engine.profile.affinity import Decay
from geo_engine.profile.attributes import ConsentPurpose, refuses
from geo_engine.profile.places import (
    HOME,
    WORK,
    CellEvidence,
    PlacesConfig,
    choose,
    merge,
    observe,
)
from geo_engine.profile.ports import ProfileStore
from geo_engine.profile.state import ProfileState

# fixed reference of the place evidence's decay (2025-01-01): float64 holds 2^((t - ref)/h)
# for ~80 years at a 30-day half-life
PLACES_REF = 1_735_689_600.0
PLACES_LAG = timedelta(seconds=10)  # a fix committed by a slow transaction is not skipped
# fixes per window of receipt time the job reads at once (~20 ms of the event loop each);
# the window adapts to the rate fixes came in at, between these bounds
CHUNK_FIXES = 2_000
FIRST_WINDOW = timedelta(seconds=1)
MIN_WINDOW = timedelta(milliseconds=10)
MAX_WINDOW = timedelta(hours=1)


async def refresh(
    store: ProfileStore,
    transactions: Transactions,
    state: ProfileState,
    cfg: PlacesConfig,
    now: float,
) -> int:
    """Fold the raw fixes received since the last run into home/work evidence; returns how many
    customers' places were recomputed.

    In windows of receipt time holding about `CHUNK_FIXES` fixes each, one transaction each
    (the mark moves with it), yielding to the event loop between them: the job runs every 10
    minutes by default, and reading 10 minutes of a city (3 M fixes at 5 k/s) as one list held
    the loop the API answers on for seconds and grew the process by a fix object per fix (the
    soak's only latency spike: 1-2 s at its first run, 30 s after start)."""
    until = datetime.fromtimestamp(now, UTC) - PLACES_LAG
    async with transactions.transaction() as tx:
        reached = await store.fixes_from(tx, "places")
    window = FIRST_WINDOW
    customers: set[str] = set()
    while True:
        end = until if reached is None else min(until, reached + window)
        n = await _fold(store, transactions, state, cfg, end, customers)
        if end >= until:
            return len(customers)
        reached = end
        if n > 2 * CHUNK_FIXES:
            window = max(window / 2, MIN_WINDOW)
        elif n < CHUNK_FIXES // 2:
            window = min(window * 2, MAX_WINDOW)
        await asyncio.sleep(0)


async def _fold(
    store: ProfileStore,
    transactions: Transactions,
    state: ProfileState,
    cfg: PlacesConfig,
    until: datetime,
    customers: set[str],
) -> int:
    """One window: the fixes received up to `until` since the mark, folded and stored, their
    customers' places chosen again in memory (added to `customers`); returns how many fixes."""
    async with transactions.transaction() as tx:
        fixes = await store.fixes_since(tx, "places", until)
        if not fixes:
            return 0
        refused = state.objecting | {
            c for c, cons in state.consents.items() if refuses(cons, ConsentPurpose.LOCATION)
        }
        kept = [f for f in fixes if f.customer_id not in refused]
        cids = [f.customer_id for f in kept]
        col = np.asarray
        obs = observe(
            col([f.ts for f in kept], np.float64),
            col([f.lat for f in kept], np.float64),
            col([f.lon for f in kept], np.float64),
            col([np.nan if f.accuracy_m is None else f.accuracy_m for f in kept]),
            cfg,
        )
        rows = [
            (cids[i], int(k), int(c), int(h), int(d))
            for i, k, c, h, d in zip(
                obs.index.tolist(), obs.kind, obs.cell, obs.hour, obs.day, strict=True
            )
        ]
        touched = sorted({r[0] for r in rows})
        evidence = await store.place_cells(tx, touched)
        changed = merge(evidence, rows, Decay(cfg.half_life_days, PLACES_REF))
        await store.upsert_place_cells(tx, {k: evidence[k] for k in changed})
    apply(state, evidence, set(touched), cfg)
    customers.update(touched)
    return len(fixes)


def apply(
    state: ProfileState,
    evidence: dict[tuple[str, int, int], CellEvidence],
    customers: set[str],
    cfg: PlacesConfig,
) -> None:
    """Choose each customer's home and work cells from the evidence, into memory."""
    grouped: dict[tuple[str, int], dict[int, CellEvidence]] = {}
    for (cid, kind, cell), ev in evidence.items():
        grouped.setdefault((cid, kind), {})[cell] = ev
    for cid in customers:
        chosen = [choose(grouped.get((cid, kind), {}), kind, cfg.min_days) for kind in (HOME, WORK)]
        state.set_places(cid, tuple(p for p in chosen if p is not None))
