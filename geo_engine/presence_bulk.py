"""The common path of a batch, in bulk: fixes that touch no fence, from a customer who is inside
none, only move the customer's cursor (or are flagged duplicate, late or mock). Those rows are
settled here with numpy — the checks of `PresenceEngine.apply` on arrays, every customer's fixes
in time order at once — and only the others go through the per-fix state machine.

Applying a customer's fixes one by one in time order, with the cursor at time c: those before c
are late and those at c duplicates (nothing before them in time order moves the cursor); the
first newer one is checked against the cursor and, when it passes, becomes it; one at the same
time is then a duplicate of it, and the next newer one is checked against it, and so on. When
every check of that chain passes, the outcome is known without the machine: the flags above and
the cursor at the chain's last fix. That is what is done here, for all customers at once.

What stays on the per-fix path, so the result is the same as applying every fix in time order:
a customer with an observation (near a fence) or inside one, known from proximity signals only,
in a suspect (speed) run, or with an event time ahead of its cursor; a customer one of whose
checks fails or lies within rounding of its budget (what follows depends on the suspect run it
starts). A retried upload (the same fixes again) is all late or duplicate: settled here.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from geo_engine.batch import FixBatch
from geo_engine.models import CustomerCursor, FixFlag
from geo_engine.presence_state import PresenceState
from geo_engine.presence_time import NEG_INF
from geofences.geodesy import M_PER_DEG, haversine_m_vec

Bools = NDArray[np.bool_]
Ints = NDArray[np.intp]
Floats = NDArray[np.float64]
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
    code_of: dict[str, int] = {}
    codes = np.fromiter((code_of.setdefault(c, len(code_of)) for c in ids), np.intp, n)
    blocked, cursor = _cursors(state, code_of)
    blocked[codes[busy]] = True
    rows = np.flatnonzero(~done & ~blocked[codes])
    if not len(rows):
        return done, flags
    rows = rows[np.lexsort((batch.ts[rows], codes[rows]))]  # by customer, then time (stable)
    c = codes[rows]
    ts = batch.ts[rows]
    late = ts < cursor[0, c]  # NaN (no cursor yet): neither
    dup = ts == cursor[0, c]
    newer = np.flatnonzero(~late & ~dup)  # positions in `rows`
    again = ~_starts(c[newer])  # the same time as the newer fix before it: its duplicate
    again[again] = ts[newer][again] == np.roll(ts[newer], 1)[again]
    chain = newer[~again]
    ok = _checked(state, batch, rows[chain], c[chain], cursor)
    failed = np.zeros(len(code_of), np.bool_)
    failed[c[chain[~ok]]] = True
    settled = ~failed[c]
    done[rows[settled]] = True
    dup[newer[again]] = True
    for r in rows[settled & late].tolist():
        flags[r] = FixFlag.LATE
    for r in rows[settled & dup].tolist():
        flags[r] = FixFlag.DUPLICATE
    last = np.zeros(len(rows), np.bool_)
    last[chain[_ends(c[chain])]] = True
    state.advance(_moves(batch, rows[settled & last]))
    return done, flags


def _starts(c: Ints) -> Bools:
    """Whether each position starts its customer's run (`c` grouped by customer)."""
    out = np.ones(len(c), np.bool_)
    out[1:] = c[1:] != c[:-1]
    return out


def _ends(c: Ints) -> Bools:
    out = np.ones(len(c), np.bool_)
    out[:-1] = c[1:] != c[:-1]
    return out


def _cursors(state: PresenceState, code_of: dict[str, int]) -> tuple[Bools, NDArray[np.float64]]:
    """Per customer code: whether it must take the per-fix path, and its cursor as columns
    (last_ts, lat, lon, accuracy; NaN for a customer with no cursor yet: its first fix is it)."""
    cursors, inside = state.cursors, state.inside_any
    stopped: list[int] = []
    known: list[int] = []
    values: list[tuple[float, float, float, float]] = []
    for cid, k in code_of.items():
        if cid in inside:
            stopped.append(k)
            continue
        cur = cursors.get(cid)
        if cur is None:
            continue
        if cur.last_ts == NEG_INF or cur.suspect_ts is not None or cur.last_event_ts is not None:
            stopped.append(k)
            continue
        acc = cur.last_accuracy_m
        known.append(k)
        values.append((cur.last_ts, cur.last_lat, cur.last_lon, math.nan if acc is None else acc))
    # written into the arrays once: a numpy item assignment per customer cost ~1 µs each
    blocked = np.zeros(len(code_of), np.bool_)
    blocked[stopped] = True
    prev = np.full((4, len(code_of)), math.nan)
    if known:
        prev[:, known] = np.array(values, np.float64).T
    return blocked, prev


def _checked(state: PresenceState, batch: FixBatch, rows: Ints, c: Ints, cursor: Floats) -> Bools:
    """Whether each fix of a chain (rows by customer `c`, strictly later in time one after the
    other) is surely accepted against the one before it, the first against the customer's
    cursor; a customer's first fix is its cursor when it has none."""
    cfg = state.config
    ts, lat, lon, acc = batch.ts[rows], batch.lat[rows], batch.lon[rows], batch.accuracy_m[rows]
    first = _starts(c)
    ts0 = np.where(first, cursor[0, c], np.roll(ts, 1))
    lat0 = np.where(first, cursor[1, c], np.roll(lat, 1))
    lon0 = np.where(first, cursor[2, c], np.roll(lon, 1))
    acc0 = np.where(first, cursor[3, c], np.roll(acc, 1))
    unknown = cfg.unknown_accuracy_m
    acc = np.where(np.isnan(acc) | (acc <= 0.0), unknown, acc)
    acc0 = np.where(np.isnan(acc0) | (acc0 <= 0.0), unknown, acc0)
    budget = cfg.max_speed_mps * (ts - ts0) + acc0 + acc
    dlon = np.abs(lon - lon0)
    dlon = np.where(dlon > 180.0, 360.0 - dlon, dlon)
    quick = (np.abs(lat - lat0) + dlon) * M_PER_DEG <= budget
    dist = haversine_m_vec(lat0, lon0, lat, lon)
    sure = quick | (dist <= budget * (1.0 - _EDGE))
    return (first & np.isnan(ts0)) | sure


def _moves(batch: FixBatch, rows: Ints) -> list[tuple[str, CustomerCursor]]:
    """Each accepted fix as its customer's new cursor (accuracy NaN or 0: unknown)."""
    ids = batch.customer_ids
    acc = batch.accuracy_m[rows]
    acc_or_none = [None if a != a or a <= 0 else a for a in acc.tolist()]
    return [
        (ids[i], CustomerCursor(t, la, lo, a))
        for i, t, la, lo, a in zip(
            rows.tolist(),
            batch.ts[rows].tolist(),
            batch.lat[rows].tolist(),
            batch.lon[rows].tolist(),
            acc_or_none,
            strict=True,
        )
    ]
