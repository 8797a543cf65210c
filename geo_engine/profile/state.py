"""The in-memory profile state of every customer, column-wise in numpy (one slot per customer):
what the decision path reads in microseconds, with no database round trip.

Changes come as a *plan* (computed without touching the state) that the adapter stores in
PostgreSQL, then *applies* once the transaction committed: memory only ever holds what is
stored. Growing the slot table and advancing the day clock happen while planning; both are
harmless if the transaction then fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from geo_engine.profile.affinity import Decay, add_categories, category_weight, channel_weight
from geo_engine.profile.attributes import (
    Attributes,
    Consent,
    ConsentPurpose,
    objects_to_processing,
)
from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.events import (
    CHANNELS,
    N_KPIS,
    VELOCITY_NAMES,
    BehaviouralEvent,
    SensitivePages,
    kpis_of,
)
from geo_engine.profile.packed import (
    AttributeTable,
    CategoryTable,
    ConsentTable,
    Records,
    Strings,
)
from geo_engine.profile.places import Place
from geo_engine.profile.rfm import RfmFigures, RfmScorer
from geo_engine.profile.ring import DayRing, day_of, window_weights
from geo_engine.profile.velocity import (
    N_VELOCITY,
    TREND_NAMES,
    Crossing,
    TrendUpdate,
    crossings,
    velocity,
)

__all__ = ["Crossing", "Plan", "ProfileState", "TrendUpdate"]

I64 = NDArray[np.int64]
_CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}


@dataclass(frozen=True, slots=True)
class Plan:
    kpi_slots: I64
    kpis: I64
    days: I64
    channel_slots: I64
    channels: I64
    channel_values: NDArray[np.float64]  # at the channel Decay's reference
    categories: dict[int, dict[str, float]] = field(default_factory=dict)
    trends: TrendUpdate | None = None

    @classmethod
    def of_trends(cls, trends: TrendUpdate) -> Plan:
        """A plan that only changes trends (a sweep's)."""
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(i, i, i, i, i, f, {}, trends)


class ProfileState:
    def __init__(self, cfg: ProfileConfig, *, ref: float = 0.0, capacity: int = 1024) -> None:
        self.cfg = cfg
        self.sensitive = SensitivePages(cfg.sensitive_url_patterns)
        self.ids: list[str] = []
        self.slots: dict[str, int] = {}
        self.ring = DayRing(N_KPIS, cfg.ring_days, capacity)
        self.trend = np.zeros((capacity, N_VELOCITY), np.int8)
        # RFM figures of buyers only, a row each (orders, converted, money, first, last):
        # most active customers have none, and 40 B a slot would be idle for them
        self.buyer = np.full(capacity, -1, np.int32)  # slot -> row, -1: no figures
        self.rfm_rows = np.zeros((0, 5), np.float64)
        self.n_buyers = 0
        self.channel = np.zeros((capacity, len(CHANNELS)), np.float64)
        self.channel_decay = Decay(cfg.channel_half_life_days, ref)
        self.category_decay = Decay(cfg.category_half_life_days, ref)
        # repeated strings (category names, consent sources, attribute values) as numbers
        self.strings = Strings()
        # consents, attributes and category scores: one packed record a customer (packed.py)
        self.records = Records(self.slots, self.ids)
        self.categories = CategoryTable(self.records, self.strings)  # by slot
        self.places: dict[str, tuple[Place, ...]] = {}
        self.attributes = AttributeTable(self.records, self.strings)
        self.consents = ConsentTable(self.records, self.strings)
        self.objecting: set[str] = set()
        self.scorer = RfmScorer()

    # --- slots -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def slot(self, customer_id: str) -> int:
        s = self.slots.get(customer_id)
        if s is None:
            s = len(self.ids)
            self._reserve(s + 1)
            self.slots[customer_id] = s
            self.ids.append(customer_id)
            self.records.adopt(customer_id, s)
        return s

    def truncate(self, n: int) -> None:
        """Forget the slots made after the first `n` by a plan never applied: a plan writes no
        row, so they are free again (a rolled-back ingest leaves no empty profile behind)."""
        self.records.truncate(n)
        for cid in self.ids[n:]:
            del self.slots[cid]
        del self.ids[n:]

    def _reserve(self, n: int) -> None:
        cap = self.ring.capacity
        self.ring.reserve(n)
        new = self.ring.capacity
        if new == cap:
            return
        for name in ("trend", "buyer", "channel"):
            old = getattr(self, name)
            grown = np.full((new, *old.shape[1:]), -1 if name == "buyer" else 0, old.dtype)
            grown[:cap] = old
            setattr(self, name, grown)

    def reserve(self, n: int) -> None:
        self._reserve(n)

    # --- events ----------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        self.ring.advance(day_of(now))

    def plan(self, events: Sequence[BehaviouralEvent], now: float) -> Plan:
        """What recording `events` changes; `now` is the clock the windows are read at."""
        self.advance(max([now, *(e.ts for e in events)]))
        ks: list[int] = []
        kslots: list[int] = []
        kdays: list[int] = []
        cslots: list[int] = []
        cidx: list[int] = []
        cts: list[float] = []
        cw: list[float] = []
        cats: dict[int, dict[str, float]] = {}
        cd = self.category_decay
        for e in events:
            s = self.slot(e.customer_id)
            for k in kpis_of(e, self.sensitive):
                ks.append(int(k))
                kslots.append(s)
                kdays.append(day_of(e.ts))
            cslots.append(s)
            cidx.append(_CHANNEL_INDEX[e.channel])
            cts.append(e.ts)
            cw.append(channel_weight(e))
            if e.categories:
                acc = cats.setdefault(s, {})
                base = category_weight(e)
                for cat, mult in e.categories:
                    acc[cat] = acc.get(cat, 0.0) + cd.stored(base * mult, e.ts)
        values = self.channel_decay.stored_vec(np.asarray(cw, np.float64), np.asarray(cts))
        plan = Plan(
            np.asarray(kslots, np.int64),
            np.asarray(ks, np.int64),
            np.asarray(kdays, np.int64),
            np.asarray(cslots, np.int64),
            np.asarray(cidx, np.int64),
            values,
            cats,
        )
        touched = np.unique(np.asarray(cslots, np.int64))
        trends = self._trends(touched, now, plan)
        return replace(plan, trends=trends)

    def apply(self, plan: Plan) -> None:
        self.ring.add(plan.kpi_slots, plan.kpis, plan.days)
        np.add.at(self.channel, (plan.channel_slots, plan.channels), plan.channel_values)
        for s, adds in plan.categories.items():
            self.categories[s] = add_categories(
                self.categories.get(s, {}), adds, self.cfg.max_categories
            )
        if plan.trends is not None:
            self.apply_trends(plan.trends)

    def _trends(self, slots: I64, now: float, plan: Plan | None = None) -> TrendUpdate:
        """Velocity of `slots` at `now` (with `plan`'s counts added): the trends that change."""
        cfg = self.cfg
        latest, previous = self.ring.windows(cfg.window_days, now, slots)
        if plan is not None and plan.kpi_slots.size:
            w_l, w_p = window_weights(cfg.window_days, now)
            offset = day_of(now) - plan.days
            ok = (offset >= 0) & (offset < w_l.size)
            pos = np.searchsorted(slots, plan.kpi_slots[ok])
            np.add.at(latest, (pos, plan.kpis[ok]), w_l[offset[ok]])
            np.add.at(previous, (pos, plan.kpis[ok]), w_p[offset[ok]])
        v = velocity(latest, previous, cfg)
        old = self.trend[slots]
        changed = np.nonzero((v.trend != old).any(axis=1))[0]
        rows, cols = crossings(old, v.trend)
        # columns as Python lists first: per-element numpy indexing would cost ~1 us a value
        cids = [self.ids[s] for s in slots[rows].tolist()]
        lat = np.round(v.latest[rows, cols], 3).tolist()
        prev = np.round(v.previous[rows, cols], 3).tolist()
        pct = np.round(v.pct[rows, cols].astype(np.float64), 2).tolist()
        was = old[rows, cols].tolist()
        now_t = v.trend[rows, cols].tolist()
        w = cfg.window_days
        out = [
            Crossing(
                cid,
                VELOCITY_NAMES[c],
                TREND_NAMES[a],
                TREND_NAMES[b],
                x,
                y,
                None if p != p else p,
                now,
                w,
            )
            for cid, c, a, b, x, y, p in zip(
                cids, cols.tolist(), was, now_t, lat, prev, pct, strict=True
            )
        ]
        return TrendUpdate(slots[changed], v.trend[changed], out)

    def sweep(self, now: float, slots: npt.NDArray[np.int64] | None = None) -> TrendUpdate:
        """Every customer's velocity at `now` (or those in `slots`): windows slide with time,
        so a customer who stopped doing anything turns falling without any new event (the
        churn case)."""
        self.advance(now)
        if slots is None:
            slots = np.arange(len(self.ids), dtype=np.int64)
        return self._trends(slots, now)

    def apply_trends(self, update: TrendUpdate) -> None:
        self.trend[update.slots] = update.trends

    # --- loading (from PostgreSQL at start) ------------------------------------------------
    def load_counts(self, rows: Iterable[tuple[str, int, int, int]], now: float) -> None:
        """(customer, kpi, day, count) rows."""
        self.advance(now)
        data = [(self.slot(c), k, d, n) for c, k, d, n in rows]
        if data:
            a = np.asarray(data, np.int64)
            self.ring.add(a[:, 0], a[:, 1], a[:, 2], a[:, 3])

    def load_trends(self, rows: Iterable[tuple[str, Sequence[int]]]) -> None:
        for cid, trends in rows:
            # slot() first: it may grow (replace) the arrays, and `self.trend[self.slot(c)]`
            # would write into the old one
            s = self.slot(cid)
            self.trend[s] = np.asarray(trends, np.int8)

    def load_affinity(
        self, channels: Iterable[tuple[str, int, float]], cats: Iterable[tuple[str, str, float]]
    ) -> None:
        """Stored-scale sums (at the decays' reference) per (customer, channel / category)."""
        for cid, ch, v in channels:
            s = self.slot(cid)  # before indexing: it may replace self.channel (see load_trends)
            self.channel[s, ch] += v
        for cid, cat, v in cats:
            s = self.slot(cid)
            self.categories[s] = add_categories(
                self.categories.get(s, {}), {cat: v}, self.cfg.max_categories
            )

    # --- RFM, declared attributes, places --------------------------------------------------
    def set_rfm(self, customer_id: str, fig: RfmFigures | None) -> None:
        s = self.slot(customer_id)
        if fig is None:
            fig = RfmFigures(0, 0, 0.0, 0.0, 0.0)
        r = int(self.buyer[s])
        if r < 0:
            r = self.n_buyers
            if r == len(self.rfm_rows):
                grown = np.zeros((max(64, 2 * r), 5), np.float64)
                grown[:r] = self.rfm_rows
                self.rfm_rows = grown
            self.n_buyers += 1
            self.buyer[s] = r
        # orders as float64: exact up to 2**53, and the scorer ranks them as floats anyway
        self.rfm_rows[r] = (fig.orders, fig.converted_orders, fig.total, fig.first_ts, fig.last_ts)
        self.scorer.changes += 1

    def rfm(self, slot: int) -> RfmFigures | None:
        r = int(self.buyer[slot])
        if r < 0 or self.rfm_rows[r, 0] <= 0:
            return None
        orders, converted, money, first, last = self.rfm_rows[r].tolist()
        return RfmFigures(int(orders), int(converted), money, first, last)

    def refresh_scores(self, now: float) -> None:
        """Re-take the base the quintiles rank against (vectorized over all buyers)."""
        rows = self.rfm_rows[: self.n_buyers]
        rows = rows[rows[:, 0] > 0]  # the scorer sorts each column: row order is free
        self.scorer.refresh(rows[:, 4], rows[:, 0], rows[:, 2], now)

    def set_attributes(self, customer_id: str, attrs: Attributes) -> None:
        self.attributes[customer_id] = attrs

    def set_consents(self, customer_id: str, consents: Mapping[ConsentPurpose, Consent]) -> None:
        self.consents[customer_id] = consents
        if objects_to_processing(consents):
            self.objecting.add(customer_id)
        else:
            self.objecting.discard(customer_id)

    def set_places(self, customer_id: str, places: tuple[Place, ...]) -> None:
        self.places[customer_id] = places

    def rebase(self, now: float) -> None:
        """Keep the decayed sums far from float overflow (see affinity.Decay)."""
        if self.channel_decay.needs_rebase(now):
            self.channel *= self.channel_decay.rebase(now)
        if self.category_decay.needs_rebase(now):
            self.categories.scale(self.category_decay.rebase(now))

    def nbytes(self) -> dict[str, int]:
        """Array bytes of the columns (allocated capacity)."""
        arrays: list[NDArray[np.generic]] = [self.ring.counts, self.trend, self.buyer]
        arrays += [self.rfm_rows, self.channel]
        return {"arrays": sum(int(a.nbytes) for a in arrays), "capacity": self.ring.capacity}
