"""Ports the core speaks through. Each has an in-memory and a PostgreSQL implementation and one
contract suite (tests/contract) runs on both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from geo_engine.models import CustomerCursor, FenceState, PresenceEvent
from geofences.model import Geofence


@dataclass(frozen=True, slots=True)
class RawFix:
    customer_id: str
    device_id: str | None
    ts: float
    lat: float
    lon: float
    accuracy_m: float | None
    speed_mps: float | None
    heading: float | None
    mock: bool
    flag: str | None


@dataclass(frozen=True, slots=True)
class PresenceCommit:
    """Everything one batch changed; stored in one transaction or not at all."""

    cursors: Mapping[str, CustomerCursor] = field(default_factory=dict)
    states: Mapping[tuple[str, str], FenceState | None] = field(default_factory=dict)
    events: Sequence[PresenceEvent] = ()
    raw_fixes: Sequence[RawFix] = ()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event: PresenceEvent


@dataclass(frozen=True, slots=True)
class EventQuery:
    customer_id: str | None = None
    geofence_id: str | None = None
    type: str | None = None
    since: float | None = None
    after_id: int = 0
    limit: int = 100


class Tx(Protocol):
    """An open storage transaction. Services never look inside: they hand it to the port
    methods whose writes must commit with the change that caused them (the outbox guarantee).
    PostgreSQL: adapters/db/tx.py; memory: adapters/memory/tx.py."""

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        """A nested scope: an exception leaving it undoes its writes and nothing else."""
        ...


class Transactions(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """Commits when the block ends, rolls everything back if it raises."""
        ...


class PresenceStore(Protocol):
    async def load(
        self, customer_ids: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, CustomerCursor]], list[tuple[str, str, FenceState]]]:
        """Cursors and fence states as stored: everyone's (at start), or these customers'."""
        ...

    async def write(self, tx: Tx, batch: PresenceCommit) -> list[int]:
        """Store `batch` in `tx`; return the ids given to `batch.events`, in order."""
        ...

    async def events(self, query: EventQuery) -> list[StoredEvent]: ...

    async def presence_of(self, customer_id: str) -> list[tuple[str, FenceState]]: ...


class FenceRepository(Protocol):
    async def all(self) -> list[Geofence]: ...

    async def get(self, fence_id: str) -> Geofence | None: ...

    async def find(
        self, store_id: str | None = None, kind: str | None = None
    ) -> list[Geofence]: ...

    async def upsert(self, fence: Geofence) -> bool:
        """Create or replace; True when created."""
        ...

    async def upsert_many(self, fences: Sequence[Geofence]) -> None:
        """All or nothing."""
        ...

    async def delete(self, fence_id: str) -> bool:
        """Delete the fence and the presence state inside it; False when it did not exist."""
        ...


class IdentityDirectory(Protocol):
    """Which customer owns which identifier (device, app install, cookie, phone, e-mail hash),
    and moving a device's own presence history to the customer it is linked to. PostgreSQL:
    adapters/db/identities.py; memory: adapters/memory/identities.py. The `Tx` methods run in
    the identity service's transaction, with the presence it merges."""

    async def customers_of(self, type_: str, values: Sequence[str]) -> dict[str, str]:
        """Map the linked identifiers among `values` to their customer ids."""
        ...

    async def device_links(self) -> dict[str, str]:
        """Every linked device id -> its customer id."""
        ...

    async def of_customer(self, customer_id: str) -> list[tuple[str, str, datetime]]:
        """The customer's identifiers (type, value, linked at), by type then value."""
        ...

    async def owners(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The owners of the linked (type, value) pairs among `pairs`; no other transaction can
        change those links until `tx` ends."""
        ...

    async def insert_links(
        self, tx: Tx, customer_id: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        """Link `pairs` to the customer; a pair already linked keeps its owner."""
        ...

    async def delete_links(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None: ...

    async def reattribute(
        self, tx: Tx, source: str, target: str, superseded: Mapping[str, tuple[str, float]]
    ) -> int:
        """Move `source`'s presence events and raw fixes to `target`, and drop its cursor and
        presence state. First, per superseded visit (fence id -> (owner, entered at)), the
        owner's enter and dwell events there since it entered are deleted: the merged visit
        keeps one. Returns how many presence events moved."""
        ...
