"""One batch of fixes through the index and the presence engine.

Pure and synchronous: the caller owns the transaction (engine.begin/commit/rollback) and the
storage. Most fixes touch no fence and belong to customers inside none: for those the engine only
moves the customer's cursor, and no geometry beyond the vectorized index lookup is done.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from geo_engine.batch import FixBatch
from geo_engine.models import FenceObservation, Fix, FixFlag, PresenceEvent
from geo_engine.presence import PresenceEngine
from geo_engine.presence_bulk import settle_plain
from geofences.index import FenceIndex


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    events: list[PresenceEvent]
    flags: list[FixFlag | None]  # per input row
    fence_hits: int  # (fix, fence) pairs where the fix lay inside the fence


def observations_by_row(
    batch: FixBatch, index: FenceIndex, engine: PresenceEngine
) -> dict[int, list[FenceObservation]]:
    """For every row that may cause a transition, its depth in each fence that matters.

    A customer's candidate fences are those any of its fixes in this batch lies in, plus those it
    is inside already: so an enter and the exit that follows in the same batch are both seen.
    """
    m = index.match(batch.lat, batch.lon)
    ids = batch.customer_ids
    fences = index.fences
    known: dict[tuple[int, int], float] = {}
    candidates: dict[str, set[int]] = defaultdict(set)
    for row, fidx, depth in zip(
        m.ping_idx.tolist(), m.fence_idx.tolist(), m.depth_m.tolist(), strict=True
    ):
        known[(row, fidx)] = depth
        candidates[ids[row]].add(fidx)
    for cid in set(ids):
        inside = engine.inside(cid)
        for fence_id in inside:
            pos = index.position(fence_id)
            if pos is not None:
                candidates[cid].add(pos)
    if not candidates:
        return {}
    rows_missing: list[int] = []
    fences_missing: list[int] = []
    for row, cid in enumerate(ids):
        for fidx in candidates.get(cid, ()):
            if (row, fidx) not in known:
                rows_missing.append(row)
                fences_missing.append(fidx)
    if rows_missing:
        r = np.asarray(rows_missing, dtype=np.int64)
        depths = index.depth_m(
            np.asarray(fences_missing, dtype=np.int32), batch.lat[r], batch.lon[r]
        )
        for row, fidx, depth in zip(rows_missing, fences_missing, depths.tolist(), strict=True):
            known[(row, fidx)] = depth
    out: dict[int, list[FenceObservation]] = defaultdict(list)
    for (row, fidx), depth in known.items():
        out[row].append(FenceObservation(fences[fidx].id, depth))
    return out


def run_batch(
    batch: FixBatch, index: FenceIndex, engine: PresenceEngine, *, bulk: bool = True
) -> BatchOutcome:
    """Apply the batch in time order (stable for equal times) inside the caller's transaction.

    The rows that can only move a cursor are settled in bulk first (presence_bulk.py: the
    same outcome as applying them in order, since nothing else in the batch depends on them);
    `bulk=False` applies every row one by one (what the equivalence tests compare against)."""
    obs = observations_by_row(batch, index, engine)
    hits = sum(1 for row_obs in obs.values() for o in row_obs if o.depth_m >= 0)
    ts = batch.ts.tolist()
    lat = batch.lat.tolist()
    lon = batch.lon.tolist()
    acc = batch.accuracy_m.tolist()
    mock = batch.mock.tolist()
    speed = batch.speed_mps.tolist()
    ids = batch.customer_ids
    events: list[PresenceEvent] = []
    no_obs: list[FenceObservation] = []
    if bulk:
        busy = np.zeros(len(ids), np.bool_)
        busy[list(obs)] = True
        done, flags = settle_plain(engine, batch, busy)
        order = np.argsort(batch.ts, kind="stable")
        rest = order[~done[order]].tolist()
    else:
        flags = [None] * len(ids)
        rest = np.argsort(batch.ts, kind="stable").tolist()
    for row in rest:
        a = acc[row]
        s = speed[row]
        fix = Fix(
            customer_id=ids[row],
            ts=ts[row],
            lat=lat[row],
            lon=lon[row],
            accuracy_m=None if a != a or a <= 0 else a,  # NaN or 0: unknown
            mock=mock[row],
            speed_mps=None if s != s else s,
        )
        result = engine.apply(fix, obs.get(row, no_obs))
        flags[row] = result.flag
        events.extend(result.events)
    return BatchOutcome(events=events, flags=flags, fence_hits=hits)
