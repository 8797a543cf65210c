"""Per-customer, per-KPI event counts in fixed day buckets: one numpy ring for every customer.

Layout (days, customers, kpis) uint8: a day rollover clears one contiguous slab, and summing
a window over all customers adds whole slabs (no gather per customer). Days are UTC day
numbers (floor(ts / 86400)); bucket = day % ring_days. Counts saturate at 65535 a day.

One byte a cell, not two: the ring is most of a profile's memory (16 days x 7 KPIs), and a
customer almost never does one thing more than 254 times a day. A cell past that holds 255 and
its true count sits in a small side table (`over`), added back wherever the ring is read, so
every figure is the same as with 16-bit cells.

Windows slide with the clock, not with midnight: at time t, with today's elapsed fraction f,
  latest   = [t - W days, t]      = today + the W-1 days before + (1-f) of day today-W
  previous = [t - 2W days, t - W] = f of day today-W + days today-W-1..today-2W+1
                                    + (1-f) of day today-2W
(events are taken as spread evenly within their day). A fixed-midnight window would make
every steady customer look "falling" each morning, when today is still nearly empty.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.config import DAY_S

U16_MAX = np.iinfo(np.uint16).max
CELL_MAX = 255  # a cell holding this may have its true count in DayRing.over
_NONE_STALE = np.zeros(400, np.bool_)
_NONE_STALE.flags.writeable = False


def day_of(ts: float) -> int:
    return math.floor(ts / DAY_S)


def grown_capacity(capacity: int, n: int) -> int:
    """The capacity to grow to for n slots: an eighth more, in whole KiB-slot steps."""
    return max(n, -(-(capacity + capacity // 8) // 1024) * 1024)


def window_weights(window_days: int, as_of: float) -> tuple[NDArray[np.float32], ...]:
    """(latest, previous) weights over day offsets 0..2W (offset i = day today - i)."""
    f = as_of / DAY_S - math.floor(as_of / DAY_S)
    w = window_days
    latest = np.zeros(2 * w + 1, np.float32)
    previous = np.zeros(2 * w + 1, np.float32)
    latest[:w] = 1.0
    latest[w] = 1.0 - f
    previous[w] = f
    previous[w + 1 : 2 * w] = 1.0
    previous[2 * w] = 1.0 - f
    return latest, previous


class DayRing:
    def __init__(self, kpis: int, days: int, capacity: int = 1024) -> None:
        self.kpis = kpis
        self.days = days
        self.counts: NDArray[np.uint8] = np.zeros((days, capacity, kpis), np.uint8)
        # (bucket, slot, kpi) -> true count, for the cells past CELL_MAX only
        self.over: dict[tuple[int, int, int], int] = {}
        self.day: int | None = None  # the newest day the ring holds

    @property
    def capacity(self) -> int:
        return int(self.counts.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.counts.nbytes)

    def reserve(self, n: int) -> None:
        """Room for n customers, growing by an eighth: still amortised O(1) per new customer
        (~9 copies of each slot), and at most an eighth of the ring idle (doubling left up to
        half of it: the ring is most of a profile's memory)."""
        if n <= self.capacity:
            return
        cap = grown_capacity(self.capacity, n)
        grown = np.zeros((self.days, cap, self.kpis), np.uint8)
        grown[:, : self.capacity] = self.counts
        self.counts = grown

    def count(self, day: int, slot: int, kpi: int) -> int:
        """One cell's true count (0 for a day the ring does not hold)."""
        if not self.holds(day):
            return 0
        b = day % self.days
        return self.over.get((b, slot, kpi), int(self.counts[b, slot, kpi]))

    def advance(self, day: int) -> None:
        """Move the newest day to `day`, clearing the buckets of the days that left."""
        if self.day is None:
            self.day = day
            return
        if day <= self.day:
            return
        cleared = {d % self.days for d in range(max(self.day + 1, day - self.days + 1), day + 1)}
        for b in cleared:
            self.counts[b] = 0
        if self.over:
            self.over = {k: v for k, v in self.over.items() if k[0] not in cleared}
        self.day = day

    def holds(self, day: int) -> bool:
        return self.day is not None and self.day - self.days < day <= self.day

    def add(
        self,
        slots: NDArray[np.int64],
        kpis: NDArray[np.int64],
        days: NDArray[np.int64],
        n: NDArray[np.int64] | None = None,
    ) -> None:
        """Count n (default 1) events per (slot, kpi, day); days the ring does not hold are
        skipped (older than the windows, or past the newest day: advance() first)."""
        if self.day is None or slots.size == 0:
            return
        keep = (days <= self.day) & (days > self.day - self.days)
        flat = ((days[keep] % self.days) * self.capacity + slots[keep]) * self.kpis + kpis[keep]
        weights = np.ones(flat.size, np.int64) if n is None else n[keep]
        where, inverse = np.unique(flat, return_inverse=True)
        sums = np.bincount(inverse, weights=weights, minlength=where.size).astype(np.int64)
        view = self.counts.reshape(-1)
        new = np.minimum(view[where].astype(np.int64) + sums, U16_MAX)
        if self.over or bool((new > CELL_MAX).any()):
            new = self._add_over(where, sums, new)
        view[where] = np.minimum(new, CELL_MAX).astype(np.uint8)

    def _add_over(
        self, where: NDArray[np.int64], sums: NDArray[np.int64], new: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """The cells at or past CELL_MAX: true counts from / into the side table."""
        at = np.flatnonzero((new >= CELL_MAX) | (self.counts.reshape(-1)[where] == CELL_MAX))
        cap, k = self.capacity, self.kpis
        for i, flat, add in zip(at.tolist(), where[at].tolist(), sums[at].tolist(), strict=True):
            key = (flat // (cap * k), flat // k % cap, flat % k)
            true = min(self.over.get(key, int(self.counts.reshape(-1)[flat])) + add, U16_MAX)
            if true > CELL_MAX:
                self.over[key] = true
            new[i] = true
        return new

    def _extra(
        self, bucket: int, slots: NDArray[np.int64] | slice
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """(rows, kpis, true count - CELL_MAX) of the side-table cells of one bucket, rows as
        positions in `slots` (a customer listed twice is corrected twice, like its cells)."""
        keys = [(s, k, v - CELL_MAX) for (b, s, k), v in self.over.items() if b == bucket]
        empty = np.empty(0, np.int64)
        if not keys:
            return empty, empty, empty
        a = np.asarray(keys, np.int64)
        if isinstance(slots, slice):
            rows = np.arange(self.capacity)[slots]
        else:
            rows = np.asarray(slots, np.int64)
        order = np.argsort(rows, kind="stable")
        lo = np.searchsorted(rows[order], a[:, 0], "left")
        hi = np.searchsorted(rows[order], a[:, 0], "right")
        n = hi - lo
        entry = np.repeat(np.arange(a.shape[0]), n)
        pos = order[np.repeat(lo, n) + (np.arange(entry.size) - np.repeat(np.cumsum(n) - n, n))]
        return pos, a[entry, 1], a[entry, 2]

    def offsets(self, as_of: float, span: int) -> NDArray[np.int64]:
        """Buckets of days today, today-1, ..., today-span+1 (today = the day of as_of)."""
        today = day_of(as_of)
        return (today - np.arange(span, dtype=np.int64)) % self.days

    def stale(self, as_of: float, span: int) -> NDArray[np.bool_]:
        """Which of those days the ring does not hold (never counted, or already cleared)."""
        today = day_of(as_of)
        if self.day is None:
            return np.ones(span, np.bool_)
        if self.day - self.days < today - span + 1 and today <= self.day:
            return _NONE_STALE[:span]  # the usual case: every day held
        days = today - np.arange(span)
        return (days > self.day) | (days <= self.day - self.days)

    def daily(
        self, slots: NDArray[np.int64] | slice, as_of: float, span: int
    ) -> NDArray[np.uint16]:
        """Counts (span, n, kpis), day offset 0 = today; days not held read 0."""
        buckets = self.offsets(as_of, span)
        if isinstance(slots, slice):
            out = self.counts[buckets][:, slots].astype(np.uint16)
        else:  # gather only those rows: never copy the whole ring for a few customers
            out = self.counts[buckets[:, None], slots[None, :]].astype(np.uint16)
        mask = self.stale(as_of, span)
        if mask.any():
            out[mask] = 0
        if self.over:
            for i, b in enumerate(buckets.tolist()):
                if not mask[i]:
                    rows, kpis, extra = self._extra(b, slots)
                    np.add.at(out[i], (rows, kpis), extra.astype(np.uint16))
        return out

    def windows(
        self, window_days: int, as_of: float, slots: NDArray[np.int64] | slice = slice(None)
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """(latest, previous) counts (n, kpis) of the sliding windows at as_of. Whole days are
        summed as integers; only the two edge days are weighted (see the module docstring)."""
        w = window_days
        span = 2 * w + 1
        f = np.float32(as_of / DAY_S - math.floor(as_of / DAY_S))
        stale = self.stale(as_of, span)
        buckets = self.offsets(as_of, span)
        shape = self.counts[0][slots].shape

        def total(days: range) -> NDArray[np.uint32]:
            acc = np.zeros(shape, np.uint32)
            for i in days:
                if not stale[i]:
                    np.add(acc, self.counts[buckets[i]][slots], out=acc)
                    if self.over:
                        rows, kpis, extra = self._extra(int(buckets[i]), slots)
                        np.add.at(acc, (rows, kpis), extra.astype(np.uint32))
            return acc

        def edge(i: int) -> NDArray[np.float32]:
            if stale[i]:
                return np.zeros(shape, np.float32)
            out: NDArray[np.float32] = self.counts[buckets[i]][slots].astype(np.float32)
            if self.over:
                rows, kpis, extra = self._extra(int(buckets[i]), slots)
                np.add.at(out, (rows, kpis), extra.astype(np.float32))
            return out

        mid = edge(w)
        latest = total(range(w)).astype(np.float32) + (1 - f) * mid
        previous = f * mid + total(range(w + 1, 2 * w)).astype(np.float32)
        previous += (1 - f) * edge(2 * w)
        return latest, previous
