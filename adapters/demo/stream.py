"""One time-ordered upload stream of pings, beacon sightings and NFC taps.

The app keeps one queue: fixes, sightings and taps leave in the order they were taken. A beacon
report or a tap makes it upload at once (the beacon region wakes it; a tap is a deliberate act),
1 s later, and the fixes waiting in the queue go with it: a phone that batches its fixes every
few minutes sends them early while it hears beacons. Without that, the sweep (on the server's
clock) would end a visit held by a beacon before the phone's next batch said it was still heard.

The rows then go out in upload order, `size` a slice; a slice becomes a few requests (steps) so
that every customer's pings, sightings and taps reach the engine in time order: a signal older
than the customer's latest applied fix is `late`, and a fix older than an applied signal too.
Within a step the engine orders rows by time itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adapters.demo.phones import Signals
from adapters.demo.simulate import Fleet

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
PINGS, SIGHTINGS, TAPS = range(3)  # kinds, in the order a step cycle posts them
KINDS = 3
NAMES = ("pings", "sightings", "taps")
SIGNAL_DELAY_S = 1.0  # never more than a fix's own delay: the queue stays first in, first out
ROWS = ("customer", "ts", "upload", "lat", "lon", "acc", "speed", "heading", "mock", "phase",
        "bad", "resent", "true_x", "true_y")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    kind: int
    rows: list[int]  # indices into the fleet's rows, the sightings or the taps


def _keys(customer: Ints, t: Floats, base: float, span: float) -> Floats:
    """One sortable number per (customer, time): customers apart, time within."""
    return np.asarray(customer * span + (t - base), dtype=float)


def flushed(fleet: Fleet, signals: Signals) -> Fleet:
    """The fleet with each fix uploaded no later than the first signal taken at or after it
    (that signal's upload carries the queue), rows re-sorted in upload order."""
    c = np.r_[signals.sight_customer, signals.tap_customer].astype(np.int64)
    e = np.r_[signals.sight_ts, signals.tap_ts]
    if not len(e) or not len(fleet.ts):
        return fleet
    base = min(float(fleet.ts.min()), float(e.min()))
    span = max(float(fleet.upload.max()), float(e.max())) - base + 1.0
    flush = np.unique(_keys(c, e, base, span))
    at = np.searchsorted(flush, _keys(fleet.customer, fleet.ts, base, span), side="left")
    ok = at < len(flush)
    hit = np.full(len(at), np.inf)
    hit[ok] = flush[at[ok]]
    same = np.floor(hit / span) == fleet.customer  # the same phone's signal
    early = hit - fleet.customer * span + base + SIGNAL_DELAY_S
    upload = np.where(same & ~fleet.resent, np.minimum(fleet.upload, early), fleet.upload)
    order = np.lexsort((fleet.ts, fleet.customer, upload))
    rows = {k: getattr(fleet, k)[order] for k in ROWS}
    rows["upload"] = upload[order]
    return dataclasses.replace(fleet, **rows)


def _positions(fleet: Fleet, customer: Ints, ts: Floats) -> Ints:
    """Per signal, how many rows go out before it: the queue order (upload, customer, time),
    a fix before a signal taken at the same second."""
    n, m = len(fleet.ts), len(ts)
    up = np.r_[fleet.upload, ts + SIGNAL_DELAY_S]
    order = np.lexsort((np.r_[np.zeros(n), np.ones(m)], np.r_[fleet.ts, ts],
                        np.r_[fleet.customer, customer], up))  # fmt: skip
    before = np.cumsum(order < n)
    pos = np.empty(m, dtype=np.int64)
    sig = order >= n
    pos[order[sig] - n] = before[sig]
    return pos


def upload_slices(
    fleet: Fleet, signals: Signals, size: int, grace: float
) -> Iterator[tuple[int, int, list[Step]]]:
    """(start, stop, steps): the rows start..stop in upload order (`fleet` flushed), with the
    signals sent among them, as requests to post in order. A signal after the slice's last row
    goes with it (the next slice's sweep must not come first).

    A customer whose pings come back after their signals would cost the slice a third request
    or more: that tail waits for the next slice when every item of it is younger than that
    slice's sweep can judge (`grace`, the sweep's: it decides nothing they could change)."""
    n = len(fleet.ts)
    last = max((n - 1) // size, 0)
    who = {SIGHTINGS: signals.sight_customer, TAPS: signals.tap_customer}
    when = {SIGHTINGS: signals.sight_ts, TAPS: signals.tap_ts}
    due: dict[int, list[tuple[int, int]]] = {}  # slice -> (kind, index)
    for kind in (SIGHTINGS, TAPS):
        sl = np.minimum(np.maximum(_positions(fleet, who[kind], when[kind]) - 1, 0) // size, last)
        for i in np.argsort(sl, kind="stable").tolist():
            due.setdefault(int(sl[i]), []).append((kind, i))
    carry: dict[int, list[tuple[float, int, int]]] = {}  # customer -> (ts, kind, index)
    for k, start in enumerate(range(0, n, size)):
        stop = min(start + size, n)
        here = due.get(k, [])
        if not here and not carry:
            yield start, stop, [Step(PINGS, list(range(start, stop)))]
            continue
        items, carry = carry, {}
        for kind, i in here:
            items.setdefault(int(who[kind][i]), []).append((float(when[kind][i]), kind, i))
        steps: dict[tuple[int, int], list[int]] = {}
        for r in range(start, stop):
            c = int(fleet.customer[r])
            if c in items:
                items[c].append((float(fleet.ts[r]), PINGS, r))
            else:
                steps.setdefault((0, PINGS), []).append(r)
        judged = float(fleet.upload[stop]) - grace if stop < n else math.inf
        for c, seq in items.items():
            seq.sort()
            at = _step_of([s[1] for s in seq])
            tail = next((j for j, step in enumerate(at) if step >= KINDS), len(seq))
            if tail < len(seq) and seq[tail][0] >= judged:
                carry[c], seq, at = seq[tail:], seq[:tail], at[:tail]
            for (_, kind, i), step in zip(seq, at, strict=True):
                steps.setdefault((step, kind), []).append(i)
        yield start, stop, [Step(kind, sorted(rows)) for (_, kind), rows in sorted(steps.items())]


def _step_of(kinds: list[int]) -> list[int]:
    """A customer's items in time order -> their steps: the same step while the kind holds,
    else the next step of the item's kind in the PINGS, SIGHTINGS, TAPS cycle."""
    out, step = [], 0
    for k in kinds:
        if step % KINDS != k:
            step += (k - step) % KINDS
        out.append(step)
    return out
