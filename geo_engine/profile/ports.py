"""The profile store: the port the profile service (adapters/services/profiles.py) and the
home/work refresher (adapters/services/places.py) speak to storage through. PostgreSQL:
adapters/db/profiles.py (`PgProfileStore`); memory: adapters/memory/profiles.py
(`MemoryProfileStore`); one contract suite (tests/contract/test_profile_store.py) runs on both.

Writes take the caller's `Tx`: one batch of events, its orders, trends and crossings, and what
reacts to them (decisions) commit together. `load` rebuilds the in-memory profile state at
start; the rest of the time the state is the read side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from geo_engine.ports import Tx
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose
from geo_engine.profile.places import CellEvidence
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.velocity import Crossing

CellKey = tuple[str, int, int]  # (customer id, HOME | WORK, H3 cell)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A behavioural event as stored: what it counted for when received (kpis, categories), so
    the state rebuilds exactly as it was computed."""

    customer_id: str
    type: str
    channel: str
    ts: float
    properties: str  # JSON text
    kpis: list[int]
    categories: dict[str, float] | None
    event_id: str | None = None  # the sender's idempotency key
    presence_event_id: int | None = None  # a store visit: the dwell that made it


@dataclass(frozen=True, slots=True)
class OrderRecord:
    customer_id: str
    order_id: str
    ts: float
    amount: float
    currency: str
    amount_base: float | None  # in the base currency at receipt; None: no rate known


@dataclass
class Loaded:
    """Everything the profile state is rebuilt from at start."""

    counts: list[tuple[str, int, int, int]]  # (customer, kpi, day, events)
    trends: list[tuple[str, list[int]]]
    channels: list[tuple[str, int, float]]  # (customer, channel index, decayed weight)
    categories: list[tuple[str, str, float]]  # (customer, category, decayed weight)
    rfm: dict[str, RfmFigures]
    attributes: dict[str, Attributes]
    consents: dict[str, dict[ConsentPurpose, Consent]]
    place_cells: dict[CellKey, CellEvidence]


@dataclass(frozen=True, slots=True)
class PlaceFix:
    """An accepted raw fix, as home/work inference learns from it."""

    customer_id: str
    ts: float
    lat: float
    lon: float
    accuracy_m: float | None


class ProfileStore(Protocol):
    async def load(
        self,
        *,
        counts_since: float,
        affinity_since: float,
        ref: float,
        channel_half_life_s: float,
        category_half_life_s: float,
    ) -> Loaded:
        """KPI counts per day since `counts_since`; channel and category affinity since
        `affinity_since`, each event weighted 2^((ts - ref) / half life); the rest whole."""
        ...

    # --- behavioural events and orders ------------------------------------------------------
    async def insert_events(
        self, tx: Tx, rows: Sequence[EventRecord]
    ) -> list[tuple[int, str | None, int | None]]:
        """Insert; a row whose event_id (or presence_event_id) is already stored, or earlier in
        `rows`, is skipped. Returns (id, event_id, presence_event_id) of the rows inserted."""
        ...

    async def insert_orders(self, tx: Tx, rows: Sequence[OrderRecord]) -> set[tuple[str, str]]:
        """(customer, order) pairs newly recorded; the others were already there."""
        ...

    async def delete_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None: ...

    async def cancel_orders(
        self, tx: Tx, cancels: Sequence[tuple[str, str, float]]
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """Cancel (customer, order, at). Returns (cancelled now, already cancelled); pairs in
        neither are unknown orders."""
        ...

    async def uncancel_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None: ...

    async def rfm_of(self, tx: Tx, customers: Sequence[str]) -> dict[str, RfmFigures | None]:
        """Figures from the orders not cancelled (None: no order left)."""
        ...

    # --- velocity ---------------------------------------------------------------------------
    async def upsert_trends(self, tx: Tx, rows: Sequence[tuple[str, list[int]]]) -> None:
        """Each customer's current trend per velocity figure, replaced whole."""
        ...

    async def insert_signals(self, tx: Tx, crossings: Sequence[Crossing]) -> None:
        """Crossings into rising/falling (what a backtest replays), in order."""
        ...

    # --- declared attributes and consents ---------------------------------------------------
    async def put_attributes(self, tx: Tx, customer_id: str, attrs: Attributes) -> float:
        """Replace the customer's attributes; returns when they were stored (unix s)."""
        ...

    async def put_consents(
        self, tx: Tx, customer_id: str, consents: Mapping[ConsentPurpose, Consent]
    ) -> None:
        """Log every statement; the current one per purpose is replaced only by one at least as
        recent (`at`)."""
        ...

    # --- home and work ----------------------------------------------------------------------
    async def fixes_since(self, tx: Tx, mark: str, until: datetime) -> list[PlaceFix]:
        """The accepted raw fixes received after the mark named `mark` (all, the first time)
        and by `until`, oldest first; the mark moves to `until` with `tx`."""
        ...

    async def fixes_from(self, tx: Tx, mark: str) -> datetime | None:
        """Where `fixes_since` would start: the mark, or the first time just before the oldest
        accepted fix; None when unknown (then read to `until` in one go)."""
        ...

    async def place_cells(
        self, tx: Tx, customers: Sequence[str]
    ) -> dict[CellKey, CellEvidence]: ...

    async def upsert_place_cells(self, tx: Tx, cells: Mapping[CellKey, CellEvidence]) -> None: ...
