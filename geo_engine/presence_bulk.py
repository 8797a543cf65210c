"""The common path of a batch, in bulk: a fix that touches no fence, from a customer who is
inside none and sends only this fix in the batch, only moves the customer's cursor (or is
flagged duplicate, late or mock). Those rows are settled here with numpy — the checks of
`PresenceEngine.apply` on arrays — and only the others go through the per-fix state machine.

What stays on the per-fix path, so the result is the same as applying every fix in time order:
a customer with several fixes in the batch (each check depends on the previous one), inside a
fence, with an observation, known from proximity signals only, in a suspect (speed) run, or
with an event time ahead of its cursor; and any fix whose speed check fails or lies within
rounding of its budget (`_suspect` decides those).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from geo_engine.batch import FixBatch
from geo_engine.models import CustomerCursor, FixFlag
from geo_engine.presence_state import PresenceState
from geo_engine.presence_time import NEG_INF
from geofences.geodesy import M_PER_DEG, haversine_m_vec

Bools = NDArray[np.bool_]
_EDGE = 1e-6  # relative: a distance this close to its budget is left to the scalar check


def settle_plain(
    state: PresenceState, batch: FixBatch, busy: Bools
) -> tuple[Bools, list[FixFlag | None]]:
    """(rows settled here, every row's flag where settled). `busy`: rows with observations."""
    n = len(batch)
    ids = batch.customer_ids
    flags: list[FixFlag | None] = [None] * n
    done = batch.mock.copy()  # a mocked fix changes nothing, whatever its order
    for r in np.flatnonzero(done).tolist():
        flags[r] = FixFlag.MOCK
    counts = Counter(ids)
    fresh: list[int] = []  # no cursor yet: the fix becomes it
    rows: list[int] = []
    prev: list[tuple[float, float, float, float]] = []
    cursors, inside = state.cursors, state.inside_any
    for r in np.flatnonzero(~done & ~busy).tolist():
        cid = ids[r]
        if counts[cid] != 1 or cid in inside:
            continue
        cur = cursors.get(cid)
        if cur is None:
            fresh.append(r)
        elif cur.last_ts != NEG_INF and cur.suspect_ts is None and cur.last_event_ts is None:
            acc = cur.last_accuracy_m
            prev.append((cur.last_ts, cur.last_lat, cur.last_lon, math.nan if acc is None else acc))
            rows.append(r)
    accepted = fresh + _checked(state, batch, rows, prev, done, flags)
    done[fresh] = True
    state.advance(_moves(batch, accepted))
    return done, flags


def _checked(
    state: PresenceState,
    batch: FixBatch,
    rows: list[int],
    prev: list[tuple[float, float, float, float]],
    done: Bools,
    flags: list[FixFlag | None],
) -> list[int]:
    """The rows whose fix is accepted against the customer's cursor (marked done); duplicate
    and late ones are flagged and done; a failed or borderline speed check is left undone."""
    if not rows:
        return []
    cfg = state.config
    r = np.asarray(rows, np.intp)
    last_ts, lat0, lon0, acc0 = np.asarray(prev, np.float64).T
    ts, lat, lon, acc = batch.ts[r], batch.lat[r], batch.lon[r], batch.accuracy_m[r]
    dup = ts == last_ts
    late = ~dup & (ts < last_ts)
    unknown = cfg.unknown_accuracy_m
    acc = np.where(np.isnan(acc) | (acc <= 0.0), unknown, acc)
    acc0 = np.where(np.isnan(acc0) | (acc0 <= 0.0), unknown, acc0)
    budget = cfg.max_speed_mps * (ts - last_ts) + acc0 + acc
    dlon = np.abs(lon - lon0)
    dlon = np.where(dlon > 180.0, 360.0 - dlon, dlon)
    quick = (np.abs(lat - lat0) + dlon) * M_PER_DEG <= budget
    dist = haversine_m_vec(lat0, lon0, lat, lon)
    sure = quick | (dist <= budget * (1.0 - _EDGE))
    ok = ~dup & ~late & sure
    for i in np.flatnonzero(dup).tolist():
        flags[rows[i]] = FixFlag.DUPLICATE
    for i in np.flatnonzero(late).tolist():
        flags[rows[i]] = FixFlag.LATE
    done[r[dup | late | ok]] = True
    return r[ok].tolist()  # type: ignore[no-any-return]


def _moves(batch: FixBatch, rows: list[int]) -> list[tuple[str, CustomerCursor]]:
    """Each accepted fix as its customer's new cursor (accuracy NaN or 0: unknown)."""
    ids = batch.customer_ids
    r = np.asarray(rows, np.intp)
    acc = batch.accuracy_m[r]
    acc_or_none = [None if a != a or a <= 0 else a for a in acc.tolist()]
    return [
        (ids[i], CustomerCursor(t, la, lo, a))
        for i, t, la, lo, a in zip(
            rows,
            batch.ts[r].tolist(),
            batch.lat[r].tolist(),
            batch.lon[r].tolist(),
            acc_or_none,
            strict=True,
        )
    ]
