"""In-memory PresenceStore, FenceRepository and IdentityDirectory (same contract as PostgreSQL)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from adapters.memory.tx import journal_of
from geo_engine.models import CustomerCursor, FenceState
from geo_engine.ports import EventQuery, PresenceCommit, RawFix, StoredEvent, Tx
from geofences.model import Geofence


class MemoryPresenceStore:
    def __init__(self) -> None:
        self.cursors: dict[str, CustomerCursor] = {}
        self.states: dict[tuple[str, str], FenceState] = {}
        self.stored: list[StoredEvent] = []
        self.raw_fixes: list[RawFix] = []

    async def load(
        self, customer_ids: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, CustomerCursor]], list[tuple[str, str, FenceState]]]:
        wanted = None if customer_ids is None else set(customer_ids)
        cursors = [
            (k, copy.copy(v)) for k, v in self.cursors.items() if wanted is None or k in wanted
        ]
        states = [
            (c, f, copy.copy(s))
            for (c, f), s in self.states.items()
            if wanted is None or c in wanted
        ]
        return cursors, states

    async def write(self, tx: Tx, batch: PresenceCommit) -> list[int]:
        journal = journal_of(tx)
        if journal is not None:  # a rolled-back transaction leaves the store as it found it
            saved = (dict(self.cursors), dict(self.states), len(self.stored), len(self.raw_fixes))
            journal.on_rollback(lambda: self._restore(*saved))
        # copies: the engine keeps mutating its own objects after the commit
        for cid, cur in batch.cursors.items():
            self.cursors[cid] = copy.copy(cur)
        for key, state in batch.states.items():
            if state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = copy.copy(state)
        first = len(self.stored) + 1
        ids = list(range(first, first + len(batch.events)))
        self.stored.extend(StoredEvent(i, e) for i, e in zip(ids, batch.events, strict=True))
        self.raw_fixes.extend(batch.raw_fixes)
        return ids

    def _restore(
        self,
        cursors: dict[str, CustomerCursor],
        states: dict[tuple[str, str], FenceState],
        n_stored: int,
        n_raw: int,
    ) -> None:
        self.cursors, self.states = cursors, states
        del self.stored[n_stored:], self.raw_fixes[n_raw:]

    async def events(self, query: EventQuery) -> list[StoredEvent]:
        out = []
        for se in self.stored:
            e = se.event
            if se.id <= query.after_id:
                continue
            if query.customer_id is not None and e.customer_id != query.customer_id:
                continue
            if query.geofence_id is not None and e.geofence_id != query.geofence_id:
                continue
            if query.type is not None and str(e.type) != query.type:
                continue
            if query.since is not None and e.ts < query.since:
                continue
            out.append(se)
            if len(out) >= query.limit:
                break
        return out

    async def presence_of(self, customer_id: str) -> list[tuple[str, FenceState]]:
        found = [(f, copy.copy(s)) for (c, f), s in self.states.items() if c == customer_id]
        return sorted(found, key=lambda item: item[1].entered_at)


class MemoryFenceRepository:
    def __init__(self) -> None:
        self.fences: dict[str, Geofence] = {}
        self.presence: MemoryPresenceStore | None = None  # to drop states on delete, as PG does

    async def all(self) -> list[Geofence]:
        return await self.find()

    async def get(self, fence_id: str) -> Geofence | None:
        return self.fences.get(fence_id)

    async def find(self, store_id: str | None = None, kind: str | None = None) -> list[Geofence]:
        return [
            f
            for _, f in sorted(self.fences.items())
            if (store_id is None or f.store_id == store_id) and (kind is None or f.kind == kind)
        ]

    async def upsert(self, fence: Geofence) -> bool:
        created = fence.id not in self.fences
        self.fences[fence.id] = fence
        return created

    async def upsert_many(self, fences: Sequence[Geofence]) -> None:
        for f in fences:
            self.fences[f.id] = f

    async def delete(self, fence_id: str) -> bool:
        if self.presence is not None:
            for key in [k for k in self.presence.states if k[1] == fence_id]:
                del self.presence.states[key]
        return self.fences.pop(fence_id, None) is not None


class MemoryIdentityDirectory:
    def __init__(self) -> None:
        self.links: dict[tuple[str, str], str] = {}

    async def customers_of(self, type_: str, values: Sequence[str]) -> dict[str, str]:
        return {v: self.links[(type_, v)] for v in values if (type_, v) in self.links}
