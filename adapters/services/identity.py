"""Linking identifiers to customers, and merging a device's presence into its owner's.

Under the presence lock, in one transaction: the links, the merged presence state, and the
device's history re-attributed; memory follows only if PostgreSQL commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from adapters.db import identities as db
from adapters.db.presence_store import PgPresenceStore
from adapters.services.presence import UNLINKED_PREFIX, PresenceRuntime
from geo_engine.identity import merge_presence
from geo_engine.ports import PresenceCommit


class IdentityConflict(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkResult:
    linked: int  # newly linked (already-linked ones are a no-op)
    merged_events: int  # presence events moved from the devices' own histories


class IdentityService:
    def __init__(
        self, pool: asyncpg.Pool, runtime: PresenceRuntime, store: PgPresenceStore
    ) -> None:
        self._pool = pool
        self._runtime = runtime
        self._store = store

    async def link(self, customer_id: str, pairs: Sequence[tuple[str, str]]) -> LinkResult:
        rt = self._runtime
        engine = rt.engine
        async with rt.lock:
            engine.begin()
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    current = await db.owners(conn, pairs)
                    for i, pair in enumerate(pairs):
                        owner = current.get(pair)
                        if owner is not None and owner != customer_id:
                            raise IdentityConflict(i, "already linked to another customer")
                    new = [p for p in pairs if p not in current]
                    await db.insert_links(conn, customer_id, new)
                    devices = [v for t, v in new if t == "device"]
                    moved = await self._merge_devices(conn, customer_id, devices)
                    changes = engine.commit()  # rollback() below still undoes it
                    await self._store.write(
                        conn, PresenceCommit(cursors=changes.cursors, states=changes.states)
                    )
            except BaseException:
                engine.rollback()
                raise
        for t, v in new:
            if t == "device":
                rt.device_links[v] = customer_id
        return LinkResult(len(new), moved)

    async def _merge_devices(
        self, conn: asyncpg.Connection, customer_id: str, devices: list[str]
    ) -> int:
        """Merge each device's own presence into the customer's, in memory and in SQL."""
        engine = self._runtime.engine
        moved = 0
        for device in devices:
            source = UNLINKED_PREFIX + device
            merged = merge_presence(
                customer_id,
                (engine.cursor(customer_id), dict(engine.inside(customer_id))),
                source,
                (engine.cursor(source), dict(engine.inside(source))),
            )
            engine.replace_customer(source, None, {})
            engine.replace_customer(customer_id, merged.cursor, merged.states)
            moved += await db.reattribute(conn, source, customer_id, merged.superseded)
        return moved

    async def unlink(self, customer_id: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Remove links; a device unlinked becomes its own customer again for what comes next
        (its past stays with the customer it was merged into)."""
        rt = self._runtime
        async with rt.lock, self._pool.acquire() as conn, conn.transaction():
            current = await db.owners(conn, pairs)
            for i, pair in enumerate(pairs):
                owner = current.get(pair)
                if owner is None:
                    raise IdentityConflict(i, "not linked to any customer")
                if owner != customer_id:
                    raise IdentityConflict(i, "linked to another customer")
            await db.delete_links(conn, pairs)
        for t, v in pairs:
            if t == "device":
                rt.device_links.pop(v, None)
        return len(pairs)
