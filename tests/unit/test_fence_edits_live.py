"""LivePresence.apply_fence_edit: one fence edit goes live without a rebuild, and an edit made
while a full rebuild runs survives that rebuild's swap."""

from __future__ import annotations

import asyncio

import numpy as np

from adapters.memory.stores import MemoryFenceRepository, MemoryPresenceStore
from adapters.services.live import LivePresence
from geo_engine.models import PresenceConfig
from geofences.index import FenceIndex
from geofences.model import Geofence
from tests.unit.test_index import _feature


def _circle(fid: str, lon: float, r: float = 100.0) -> Geofence:
    return _feature(fid, {"type": "Point", "coordinates": [lon, 48.85]}, r)


def _hits(live: LivePresence, lon: float) -> list[str]:
    return _hits_of(live.index, lon)


async def test_edits_go_live_one_fence_at_a_time() -> None:
    repo = MemoryFenceRepository()
    await repo.upsert_many([_circle("a", 2.30), _circle("b", 2.31)])
    live = LivePresence(MemoryPresenceStore(), repo, PresenceConfig())
    await live.start()
    before = live.index
    await repo.upsert(_circle("c", 2.32))
    await live.apply_fence_edit("c")
    assert _hits(live, 2.32) == ["c"] and len(live.index) == 3
    await repo.upsert(_circle("a", 2.33))  # moved
    await live.apply_fence_edit("a")
    assert _hits(live, 2.30) == [] and _hits(live, 2.33) == ["a"]
    await repo.delete("b")
    await live.apply_fence_edit("b")
    await live.apply_fence_edit("b")  # a repeated broadcast: nothing more to do
    assert _hits(live, 2.31) == [] and live.index.position("b") is None
    assert sorted(f.id for f in live.index.fences) == ["a", "c"]
    assert _hits_of(before, 2.31) == ["b"]  # a reader's old index did not change


def _hits_of(index: FenceIndex, lon: float) -> list[str]:
    m = index.match(np.array([48.85]), np.array([lon]))
    return sorted(index.fences[i].id for i in m.fence_idx.tolist())


class _SlowAll(MemoryFenceRepository):
    """all() returns its snapshot, then waits: edits land while the build 'runs'."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def all(self) -> list[Geofence]:
        snapshot = await super().all()
        self.read.set()
        if self.gate is not None:
            await self.gate.wait()
        return snapshot


async def test_an_edit_during_a_full_rebuild_is_not_lost() -> None:
    repo = _SlowAll()
    await repo.upsert_many([_circle("a", 2.30), _circle("b", 2.31)])
    live = LivePresence(MemoryPresenceStore(), repo, PresenceConfig())
    await live.start()
    repo.gate, repo.read = asyncio.Event(), asyncio.Event()
    rebuild = asyncio.create_task(live.reload_fences())
    await repo.read.wait()  # the rebuild holds a snapshot with a and b
    await repo.upsert(_circle("c", 2.32))
    await live.apply_fence_edit("c")
    await repo.delete("a")
    await live.apply_fence_edit("a")
    assert _hits(live, 2.32) == ["c"] and _hits(live, 2.30) == []  # live at once
    repo.gate.set()
    await rebuild
    assert sorted(f.id for f in live.index.fences) == ["b", "c"]
    assert _hits(live, 2.32) == ["c"] and _hits(live, 2.30) == []


async def test_control_follows_one_fence_without_a_rebuild() -> None:
    """On the real services (memory ports): a named edit and a deletion edit the index in
    place, and the deleted fence's presence goes with it; only a bulk change rebuilds."""
    from adapters.cluster.control import Control
    from tests.memory_engine import build_memory_services, store_feature

    svc = await build_memory_services(
        features=[store_feature("a"), store_feature("b")], require_location_consent=False
    )
    live = svc.live
    rebuilds: list[int] = []
    full = live.reload_fences

    async def counted() -> None:
        rebuilds.append(1)
        await full()

    live.reload_fences = counted  # type: ignore[method-assign]
    control = Control(svc, identities=None, origin="here")  # type: ignore[arg-type]
    await svc.fences.upsert(_circle("c", 2.32))
    await control.changed("fences", "c")
    at = live.index.fences[live.index.position("a") or 0].shape.centroid
    await svc.runtime.ingest(svc.pings([{"customer_id": "x", "lat": at.y, "lon": at.x,
                                          "ts": svc.clock() - 60, "accuracy_m": 5.0}]))  # fmt: skip
    assert "a" in live.engine.inside("x")
    await svc.fences.delete("a")
    await control.changed("fence_deleted", "a")
    assert rebuilds == [] and "a" not in live.engine.inside("x")
    assert sorted(f.id for f in live.index.fences) == ["b", "c"]
    await control.changed("fences")  # no subject (a bulk import): the full rebuild
    assert rebuilds == [1]
