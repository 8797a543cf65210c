"""The identity directory (geo_engine/ports.py) in memory, same contract as PostgreSQL
(tests/contract/test_identity_directory.py). Writes are journalled in their transaction
(adapters/memory/tx.py). `reattribute` moves history held by a MemoryPresenceStore (`presence`),
as PostgreSQL updates its tables.

Transactions here do not isolate: `owners` locks nothing, which is right as long as one writer
(the presence unit of work's lock) runs at a time, as in the tests using it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import journal_of
from geo_engine.models import CustomerCursor, FenceState, PresenceEventType
from geo_engine.ports import RawFix, StoredEvent, Tx

_OPENING = (PresenceEventType.ENTER, PresenceEventType.DWELL)  # the events a superseded visit loses


class MemoryIdentityDirectory:
    def __init__(
        self, presence: MemoryPresenceStore | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.presence = presence
        self.clock = clock
        self.links: dict[tuple[str, str], tuple[str, datetime]] = {}  # -> (customer, linked at)

    async def customers_of(self, type_: str, values: Sequence[str]) -> dict[str, str]:
        return {v: self.links[(type_, v)][0] for v in values if (type_, v) in self.links}

    async def device_links(self) -> dict[str, str]:
        return {v: cid for (t, v), (cid, _) in self.links.items() if t == "device"}

    async def of_customer(self, customer_id: str) -> list[tuple[str, str, datetime]]:
        return sorted((t, v, at) for (t, v), (cid, at) in self.links.items() if cid == customer_id)

    async def owners(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        journal_of(tx)  # a PostgreSQL transaction here is a wiring bug
        return {p: self.links[p][0] for p in pairs if p in self.links}

    async def insert_links(
        self, tx: Tx, customer_id: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        at = datetime.fromtimestamp(self.clock(), UTC)
        new = [p for p in dict.fromkeys(pairs) if p not in self.links]
        self.links.update((p, (customer_id, at)) for p in new)
        self._on_rollback(tx, lambda: self._drop(new))

    def _drop(self, pairs: Sequence[tuple[str, str]]) -> None:
        for p in pairs:
            self.links.pop(p, None)

    async def delete_links(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        gone = {p: self.links.pop(p) for p in set(pairs) if p in self.links}
        self._on_rollback(tx, lambda: self.links.update(gone))

    async def reattribute(
        self, tx: Tx, source: str, target: str, superseded: Mapping[str, tuple[str, float]]
    ) -> int:
        p = self.presence
        if p is None:
            return 0
        before = (list(p.stored), list(p.raw_fixes), p.cursors.get(source))
        states = {k: s for k, s in p.states.items() if k[0] == source}

        def dropped(e: StoredEvent) -> bool:
            ev = e.event
            visit = superseded.get(ev.geofence_id)
            return (
                visit is not None
                and ev.customer_id == visit[0]
                and ev.ts >= visit[1]
                and ev.type in _OPENING
            )

        kept = [e for e in p.stored if not dropped(e)]
        moved = sum(e.event.customer_id == source for e in kept)
        p.stored[:] = [_moved_event(e, source, target) for e in kept]
        p.raw_fixes[:] = [_moved_fix(f, source, target) for f in p.raw_fixes]
        p.cursors.pop(source, None)
        for key in states:
            del p.states[key]
        self._on_rollback(tx, lambda: _put_back(p, source, *before, states))
        return moved

    @staticmethod
    def _on_rollback(tx: Tx, undo: Callable[[], None]) -> None:
        journal = journal_of(tx)
        if journal is not None:
            journal.on_rollback(undo)


def _moved_event(e: StoredEvent, source: str, target: str) -> StoredEvent:
    if e.event.customer_id != source:
        return e
    return StoredEvent(e.id, replace(e.event, customer_id=target))


def _moved_fix(f: RawFix, source: str, target: str) -> RawFix:
    return replace(f, customer_id=target) if f.customer_id == source else f


def _put_back(
    p: MemoryPresenceStore,
    source: str,
    stored: list[StoredEvent],
    raw: list[RawFix],
    cursor: CustomerCursor | None,
    states: dict[tuple[str, str], FenceState],
) -> None:
    # in place: whoever holds the presence store's lists sees them restored
    p.stored[:] = stored
    p.raw_fixes[:] = raw
    if cursor is not None:
        p.cursors[source] = cursor
    p.states.update(states)
