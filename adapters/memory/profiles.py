"""The profile store (geo_engine/profile/ports.py) in memory, same contract as PostgreSQL
(tests/contract/test_profile_store.py). A write is applied at once and journalled in its
transaction (adapters/memory/tx.py): a transaction or savepoint left by an exception undoes it.

Raw fixes are those a MemoryPresenceStore holds (`presence`). A fix is there the moment it is
written, with no commit in flight to wait for, so `fixes_since` ignores `until`; its mark is a
position in that list.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import journal_of
from geo_engine.ports import Tx
from geo_engine.profile.affinity import CHANNEL_PURCHASE_WEIGHT
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose
from geo_engine.profile.events import CHANNELS
from geo_engine.profile.places import CellEvidence
from geo_engine.profile.ports import CellKey, EventRecord, Loaded, OrderRecord, PlaceFix
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.velocity import Crossing

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class StoredBehaviour:
    id: int
    record: EventRecord


@dataclass(slots=True)
class Order:
    record: OrderRecord
    cancelled_at: float | None = None


class MemoryProfileStore:
    def __init__(
        self, presence: MemoryPresenceStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.presence = presence
        self.clock = clock
        self.events: list[StoredBehaviour] = []
        self.event_ids: set[str] = set()
        self.presence_ids: set[int] = set()
        self.orders: dict[tuple[str, str], Order] = {}
        self.trends: dict[str, list[int]] = {}
        self.signals: list[tuple[int, Crossing]] = []
        self.attributes: dict[str, Attributes] = {}
        self.consents: dict[str, dict[ConsentPurpose, Consent]] = {}
        self.consent_log: list[tuple[str, ConsentPurpose, Consent]] = []
        self.cells: dict[CellKey, CellEvidence] = {}
        self.marks: dict[str, int] = {}  # mark -> position in presence.raw_fixes
        self._ids = {"event": 0, "signal": 0}  # sequences: never rolled back

    def _next(self, seq: str) -> int:
        self._ids[seq] += 1
        return self._ids[seq]

    async def load(
        self,
        *,
        counts_since: float,
        affinity_since: float,
        ref: float,
        channel_half_life_s: float,
        category_half_life_s: float,
    ) -> Loaded:
        counts: Counter[tuple[str, int, int]] = Counter()
        channels: defaultdict[tuple[str, int], float] = defaultdict(float)
        categories: defaultdict[tuple[str, str], float] = defaultdict(float)
        channel_index = {str(c): i for i, c in enumerate(CHANNELS)}
        for se in self.events:
            e = se.record
            if e.ts >= counts_since:
                counts.update((e.customer_id, k, math.floor(e.ts / DAY_S)) for k in e.kpis)
            if e.ts < affinity_since:
                continue
            weight = CHANNEL_PURCHASE_WEIGHT if e.type == "purchase" else 1.0
            key = (e.customer_id, channel_index[e.channel])
            channels[key] += weight * 2.0 ** ((e.ts - ref) / channel_half_life_s)
            decay = 2.0 ** ((e.ts - ref) / category_half_life_s)
            for cat, value in (e.categories or {}).items():
                categories[(e.customer_id, cat)] += value * decay
        rfm = self._rfm(None)
        return Loaded(
            counts=[(c, k, d, n) for (c, k, d), n in counts.items()],
            trends=[(c, list(t)) for c, t in self.trends.items()],
            channels=[(c, i, v) for (c, i), v in channels.items()],
            categories=[(c, k, v) for (c, k), v in categories.items()],
            rfm={c: f for c, f in rfm.items() if f is not None},
            attributes=dict(self.attributes),
            consents={c: dict(cs) for c, cs in self.consents.items()},
            place_cells=dict(self.cells),
        )

    # --- behavioural events and orders ------------------------------------------------------
    async def insert_events(
        self, tx: Tx, rows: Sequence[EventRecord]
    ) -> list[tuple[int, str | None, int | None]]:
        journal = journal_of(tx)
        n, ids, pids = len(self.events), set(self.event_ids), set(self.presence_ids)
        out: list[tuple[int, str | None, int | None]] = []
        for r in rows:
            if (r.event_id is not None and r.event_id in self.event_ids) or (
                r.presence_event_id is not None and r.presence_event_id in self.presence_ids
            ):
                continue
            if r.event_id is not None:
                self.event_ids.add(r.event_id)
            if r.presence_event_id is not None:
                self.presence_ids.add(r.presence_event_id)
            self.events.append(StoredBehaviour(self._next("event"), r))
            out.append((self.events[-1].id, r.event_id, r.presence_event_id))
        if journal is not None:
            journal.on_rollback(lambda: self._forget_events(n, ids, pids))
        return out

    def _forget_events(self, n: int, event_ids: set[str], presence_ids: set[int]) -> None:
        del self.events[n:]
        self.event_ids, self.presence_ids = event_ids, presence_ids

    async def insert_orders(self, tx: Tx, rows: Sequence[OrderRecord]) -> set[tuple[str, str]]:
        new: set[tuple[str, str]] = set()
        for r in rows:
            key = (r.customer_id, r.order_id)
            if key not in self.orders:
                self.orders[key] = Order(r)
                new.add(key)
        self._on_rollback(tx, lambda: [self.orders.pop(k) for k in new])
        return new

    async def delete_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        gone = {k: self.orders.pop(k) for k in set(pairs) if k in self.orders}
        self._on_rollback(tx, lambda: self.orders.update(gone))

    async def cancel_orders(
        self, tx: Tx, cancels: Sequence[tuple[str, str, float]]
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        now: set[tuple[str, str]] = set()
        before: set[tuple[str, str]] = set()
        for cid, oid, at in cancels:
            o = self.orders.get((cid, oid))
            if o is None or (cid, oid) in now:
                continue
            if o.cancelled_at is None:
                o.cancelled_at = at
                now.add((cid, oid))
            else:
                before.add((cid, oid))
        self._on_rollback(tx, lambda: self._set_cancelled(dict.fromkeys(now)))
        return now, before

    async def uncancel_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        was = {k: self.orders[k].cancelled_at for k in set(pairs) if k in self.orders}
        self._set_cancelled(dict.fromkeys(was))
        self._on_rollback(tx, lambda: self._set_cancelled(was))

    def _set_cancelled(self, at: Mapping[tuple[str, str], float | None]) -> None:
        for key, t in at.items():
            self.orders[key].cancelled_at = t

    async def rfm_of(self, tx: Tx, customers: Sequence[str]) -> dict[str, RfmFigures | None]:
        journal_of(tx)  # a PostgreSQL transaction here is a wiring bug
        return self._rfm(set(customers))

    def _rfm(self, customers: set[str] | None) -> dict[str, RfmFigures | None]:
        """From the orders not cancelled, of `customers` (None: everyone with one)."""
        kept: dict[str, list[OrderRecord]] = {c: [] for c in customers or ()}
        for o in self.orders.values():
            c = o.record.customer_id
            if o.cancelled_at is None and (customers is None or c in customers):
                kept.setdefault(c, []).append(o.record)
        return {c: _figures(rs) if rs else None for c, rs in kept.items()}

    # --- velocity ---------------------------------------------------------------------------
    async def upsert_trends(self, tx: Tx, rows: Sequence[tuple[str, list[int]]]) -> None:
        old = {c: self.trends.get(c) for c, _ in rows}
        self.trends.update((c, list(t)) for c, t in rows)
        self._on_rollback(tx, lambda: _restore(self.trends, old))

    async def insert_signals(self, tx: Tx, crossings: Sequence[Crossing]) -> None:
        n = len(self.signals)
        self.signals += [(self._next("signal"), c) for c in crossings]
        self._on_rollback(tx, lambda: self.signals.__delitem__(slice(n, None)))

    # --- declared attributes and consents ---------------------------------------------------
    async def put_attributes(self, tx: Tx, customer_id: str, attrs: Attributes) -> float:
        at = self.clock()
        old = {customer_id: self.attributes.get(customer_id)}
        self.attributes[customer_id] = replace(attrs, updated_at=at)
        self._on_rollback(tx, lambda: _restore(self.attributes, old))
        return at

    async def put_consents(
        self, tx: Tx, customer_id: str, consents: Mapping[ConsentPurpose, Consent]
    ) -> None:
        n, old = len(self.consent_log), {customer_id: self.consents.get(customer_id)}
        current = dict(self.consents.get(customer_id, {}))
        for purpose, c in consents.items():
            self.consent_log.append((customer_id, purpose, c))
            held = current.get(purpose)
            if held is None or held.at <= c.at:
                current[purpose] = c
        self.consents[customer_id] = current
        self._on_rollback(tx, lambda: self._restore_consents(old, n))

    def _restore_consents(
        self, old: Mapping[str, dict[ConsentPurpose, Consent] | None], n: int
    ) -> None:
        _restore(self.consents, old)
        del self.consent_log[n:]

    # --- home and work ----------------------------------------------------------------------
    async def fixes_since(self, tx: Tx, mark: str, until: datetime) -> list[PlaceFix]:
        raw = [] if self.presence is None else self.presence.raw_fixes
        old = {mark: self.marks.get(mark)}
        self.marks[mark] = len(raw)
        self._on_rollback(tx, lambda: _restore(self.marks, old))
        fixes = [
            PlaceFix(f.customer_id, f.ts, f.lat, f.lon, f.accuracy_m)
            for f in raw[old[mark] or 0 :]
            if f.flag is None
        ]
        return sorted(fixes, key=lambda f: f.ts)

    async def fixes_from(self, tx: Tx, mark: str) -> datetime | None:
        return None  # marks are positions here, and every fix is readable at once

    async def place_cells(self, tx: Tx, customers: Sequence[str]) -> dict[CellKey, CellEvidence]:
        journal_of(tx)
        wanted = set(customers)
        return {k: ev for k, ev in self.cells.items() if k[0] in wanted}

    async def upsert_place_cells(self, tx: Tx, cells: Mapping[CellKey, CellEvidence]) -> None:
        old = {k: self.cells.get(k) for k in cells}
        self.cells.update(cells)
        self._on_rollback(tx, lambda: _restore(self.cells, old))

    @staticmethod
    def _on_rollback(tx: Tx, undo: Callable[[], object]) -> None:
        journal = journal_of(tx)
        if journal is not None:
            journal.on_rollback(lambda: _discard(undo()))


K = TypeVar("K")
V = TypeVar("V")


def _discard(_: object) -> None:
    """What an undo returns is of no use."""


def _restore(target: dict[K, V], old: Mapping[K, V | None]) -> None:
    """Put back what `old` says was there (None: nothing)."""
    for key, value in old.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


def _figures(orders: Sequence[OrderRecord]) -> RfmFigures:
    """As the SQL aggregate: every order counts, only converted amounts sum."""
    converted = [o.amount_base for o in orders if o.amount_base is not None]
    return RfmFigures(
        len(orders),
        len(converted),
        sum(converted, 0.0),
        min(o.ts for o in orders),
        max(o.ts for o in orders),
    )
