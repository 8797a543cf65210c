"""Home and work areas: raw fixes folded into decayed H3-cell evidence, off the hot path.

A periodic reader (ProfileService.run_forever) takes the raw fixes committed since its cursor,
skips customers who refused location or objected to profiling, and stores the evidence; the
chosen cells go into the in-memory profile state.
"""

from __future__ import annotations

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


async def refresh(
    store: ProfileStore,
    transactions: Transactions,
    state: ProfileState,
    cfg: PlacesConfig,
    now: float,
) -> int:
    """Fold the raw fixes received since the last run into home/work evidence; returns how many
    customers' places were recomputed."""
    async with transactions.transaction() as tx:
        until = datetime.fromtimestamp(now, UTC) - PLACES_LAG
        fixes = await store.fixes_since(tx, "places", until)
        if not fixes:
            return 0
        refused = state.objecting | {
            c for c, cons in state.consents.items() if refuses(cons, ConsentPurpose.LOCATION)
        }
        fixes = [f for f in fixes if f.customer_id not in refused]
        cids = [f.customer_id for f in fixes]
        col = np.asarray
        obs = observe(
            col([f.ts for f in fixes], np.float64),
            col([f.lat for f in fixes], np.float64),
            col([f.lon for f in fixes], np.float64),
            col([np.nan if f.accuracy_m is None else f.accuracy_m for f in fixes]),
            cfg,
        )
        rows = [
            (cids[i], int(k), int(c), int(h), int(d))
            for i, k, c, h, d in zip(
                obs.index.tolist(), obs.kind, obs.cell, obs.hour, obs.day, strict=True
            )
        ]
        customers = sorted({r[0] for r in rows})
        evidence = await store.place_cells(tx, customers)
        changed = merge(evidence, rows, Decay(cfg.half_life_days, PLACES_REF))
        await store.upsert_place_cells(tx, {k: evidence[k] for k in changed})
    apply(state, evidence, set(customers), cfg)
    return len(customers)


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
