"""Linking identifiers to customers, and merging a device's presence into its owner's.

One presence unit of work per request: the links checked and written first, then the device's
presence merged in memory, the merged state written and the device's history re-attributed;
memory follows only if PostgreSQL commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.services.live import UNLINKED_PREFIX
from adapters.services.presence import PresenceRuntime
from adapters.services.unit_of_work import NO_CHANGE, Change, Stored
from geo_engine.identity import merge_presence
from geo_engine.ports import IdentityDirectory, Tx
from geo_engine.presence import PresenceEngine


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
    def __init__(self, runtime: PresenceRuntime, directory: IdentityDirectory) -> None:
        self._runtime = runtime
        self._directory = directory

    async def link(self, customer_id: str, pairs: Sequence[tuple[str, str]]) -> LinkResult:
        new: list[tuple[str, str]] = []
        # (device's own customer id, its visits superseded by the customer's: fence -> owner, since)
        superseded: list[tuple[str, dict[str, tuple[str, float]]]] = []
        moved = 0

        async def claim(tx: Tx) -> None:
            current = await self._directory.owners(tx, pairs)
            for i, pair in enumerate(pairs):
                owner = current.get(pair)
                if owner is not None and owner != customer_id:
                    raise IdentityConflict(i, "already linked to another customer")
            new.extend(p for p in pairs if p not in current)
            await self._directory.insert_links(tx, customer_id, new)

        def merge(engine: PresenceEngine) -> Change:
            for t, device in new:
                if t != "device":
                    continue
                source = UNLINKED_PREFIX + device
                merged = merge_presence(
                    customer_id,
                    (engine.cursor(customer_id), dict(engine.inside(customer_id))),
                    source,
                    (engine.cursor(source), dict(engine.inside(source))),
                )
                engine.replace_customer(source, None, {})
                engine.replace_customer(customer_id, merged.cursor, merged.states)
                superseded.append((source, merged.superseded))
            return NO_CHANGE

        async def reattribute(tx: Tx, _: Stored) -> None:
            nonlocal moved
            for source, visits in superseded:
                moved += await self._directory.reattribute(tx, source, customer_id, visits)

        await self._runtime.uow.transact(merge, before=claim, after=reattribute)
        for t, v in new:
            if t == "device":
                self._runtime.device_links[v] = customer_id
        return LinkResult(len(new), moved)

    async def unlink(self, customer_id: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Remove links; a device unlinked becomes its own customer again for what comes next
        (its past stays with the customer it was merged into)."""

        async def release(tx: Tx) -> None:
            current = await self._directory.owners(tx, pairs)
            for i, pair in enumerate(pairs):
                owner = current.get(pair)
                if owner is None:
                    raise IdentityConflict(i, "not linked to any customer")
                if owner != customer_id:
                    raise IdentityConflict(i, "linked to another customer")
            await self._directory.delete_links(tx, pairs)

        # a unit of work with no presence change: serialised with the pings that read the links
        await self._runtime.uow.transact(lambda _: NO_CHANGE, before=release)
        for t, v in pairs:
            if t == "device":
                self._runtime.device_links.pop(v, None)
        return len(pairs)
