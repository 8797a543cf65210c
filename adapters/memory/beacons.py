"""The proximity registries (geo_engine/proximity_ports.py) in memory, same contract as
PostgreSQL (tests/contract/test_proximity_registry.py). The `Tx` writes (the SUN counter, taps)
are journalled in their transaction (adapters/memory/tx.py); registry writes apply at once, as
PostgreSQL's autocommit does.

A beacon's or tag's store comes from its fence in the fence repository, read as PostgreSQL
joins it. PostgreSQL's ON DELETE CASCADE is mirrored when a read finds the fence gone: a fence
deleted then recreated under the same id before any read would find its old beacons again,
which no test here does.

Transactions do not isolate: a tap's counter is seen by others before it commits, so a
concurrent tap with the same counter loses at once where PostgreSQL makes it wait; one with the
same counter after a rollback would have won there. Right for one writer at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from adapters.memory.tx import journal_of
from geo_engine.ports import FenceRepository, Tx
from geo_engine.proximity_ports import Beacon, Conflict, NfcTag, NfcTap, UnknownTag


class MemoryBeaconRegistry:
    def __init__(self, fences: FenceRepository, *, clock: Callable[[], float] = time.time) -> None:
        self.fences = fences
        self.clock = clock
        self.beacons: dict[str, Beacon] = {}  # stored without store_id, as PostgreSQL does

    async def get(self, beacon_id: str) -> Beacon | None:
        return await self._live(self.beacons.get(beacon_id))

    async def find(
        self, store_id: str | None = None, geofence_id: str | None = None
    ) -> list[Beacon]:
        found = []
        for beacon_id in sorted(self.beacons):
            b = await self._live(self.beacons[beacon_id])
            if b is None:
                continue
            if (store_id is None or b.store_id == store_id) and (
                geofence_id is None or b.geofence_id == geofence_id
            ):
                found.append(b)
        return found

    async def by_identity(self, identities: Sequence[str]) -> dict[str, Beacon]:
        wanted = set(identities)
        found = {}
        for b in list(self.beacons.values()):
            if b.identity in wanted:
                live = await self._live(b)
                if live is not None:
                    found[b.identity] = live
        return found

    async def create(self, beacon: Beacon) -> None:
        await self._purge()
        if beacon.id in self.beacons:  # PostgreSQL checks the primary key first
            raise Conflict("id", f"beacon {beacon.id!r} exists: use PUT to replace it")
        await self._check(beacon)
        now = self._now()
        self.beacons[beacon.id] = replace(beacon, store_id=None, created_at=now, updated_at=now)

    async def put(self, beacon: Beacon) -> bool:
        await self._purge()
        await self._check(beacon)
        old = self.beacons.get(beacon.id)
        now = self._now()
        created_at = now if old is None else old.created_at
        self.beacons[beacon.id] = replace(
            beacon, store_id=None, created_at=created_at, updated_at=now
        )
        return old is None

    async def delete(self, beacon_id: str) -> bool:
        await self._purge()
        return self.beacons.pop(beacon_id, None) is not None

    async def _check(self, beacon: Beacon) -> None:
        identity = beacon.identity
        if any(b.identity == identity and b.id != beacon.id for b in self.beacons.values()):
            raise Conflict("identity", "another beacon has this identity")
        if await self.fences.get(beacon.geofence_id) is None:
            raise Conflict("geofence_id", f"no geofence {beacon.geofence_id!r}")

    async def _live(self, b: Beacon | None) -> Beacon | None:
        if b is None:
            return None
        fence = await self.fences.get(b.geofence_id)
        if fence is None:  # the cascade PostgreSQL ran when the fence was deleted
            self.beacons.pop(b.id, None)
            return None
        return replace(b, store_id=fence.store_id)

    async def _purge(self) -> None:
        # before a write: a beacon whose fence is gone no longer holds its id or identity
        for b in list(self.beacons.values()):
            await self._live(b)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


class MemoryNfcTagRegistry:
    def __init__(self, fences: FenceRepository, *, clock: Callable[[], float] = time.time) -> None:
        self.fences = fences
        self.clock = clock
        self.tags: dict[str, NfcTag] = {}
        self.recorded: list[NfcTap] = []
        self._next_id = 1  # like a sequence, not given back by a rollback

    async def get(self, tag_id: str) -> NfcTag | None:
        return await self._live(self.tags.get(tag_id))

    async def find(self, store_id: str | None = None) -> list[NfcTag]:
        found = []
        for tag_id in sorted(self.tags):
            t = await self._live(self.tags[tag_id])
            if t is not None and (store_id is None or t.store_id == store_id):
                found.append(t)
        return found

    async def create(self, tag: NfcTag) -> None:
        if await self.get(tag.id) is not None:
            raise Conflict("id", f"NFC tag {tag.id!r} exists: delete it first")
        if await self.fences.get(tag.geofence_id) is None:
            raise Conflict("geofence_id", f"no geofence {tag.geofence_id!r}")
        now = datetime.fromtimestamp(self.clock(), UTC)
        # the counter is the guard's alone: a new tag has none whatever the caller says
        self.tags[tag.id] = replace(tag, last_counter=None, store_id=None, created_at=now)

    async def delete(self, tag_id: str) -> bool:
        if await self.get(tag_id) is None:
            return False
        self._drop(tag_id)
        return True

    async def advance_counter(self, tx: Tx, tag_id: str, counter: int) -> bool:
        journal = journal_of(tx)
        tag = await self.get(tag_id)
        if tag is None or (tag.last_counter is not None and tag.last_counter >= counter):
            return False
        stored = self.tags[tag_id]
        self.tags[tag_id] = replace(stored, last_counter=counter)

        def undo() -> None:
            # the tag may have been deleted meanwhile (outside the transaction): leave it so
            if tag_id in self.tags:
                self.tags[tag_id] = replace(self.tags[tag_id], last_counter=stored.last_counter)

        if journal is not None:
            journal.on_rollback(undo)
        return True

    async def record_tap(
        self,
        tx: Tx,
        *,
        tag_id: str,
        customer_id: str,
        device_id: str | None,
        ts: float,
        counter: int | None,
        verified: bool,
        flag: str | None,
    ) -> int:
        journal = journal_of(tx)
        if await self.get(tag_id) is None:
            raise UnknownTag(tag_id)
        tap = NfcTap(self._next_id, tag_id, customer_id, device_id, ts, counter, verified, flag)
        self._next_id += 1
        self.recorded.append(tap)
        if journal is not None:
            journal.on_rollback(lambda: self._forget(tap.id))
        return tap.id

    async def taps(self, tag_id: str) -> list[NfcTap]:
        if await self.get(tag_id) is None:
            return []
        return [t for t in self.recorded if t.tag_id == tag_id]

    def _forget(self, tap_id: int) -> None:
        self.recorded[:] = [t for t in self.recorded if t.id != tap_id]

    def _drop(self, tag_id: str) -> None:
        del self.tags[tag_id]
        self.recorded[:] = [t for t in self.recorded if t.tag_id != tag_id]

    async def _live(self, t: NfcTag | None) -> NfcTag | None:
        if t is None:
            return None
        fence = await self.fences.get(t.geofence_id)
        if fence is None:  # the cascade PostgreSQL ran when the fence was deleted
            self._drop(t.id)
            return None
        return replace(t, store_id=fence.store_id)
