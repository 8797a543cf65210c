"""Live presence: the presence engine's state and the fence index it matches against, as every
service reads them (profiles, decisions, proximity, the ingest paths).

Changes to presence go through the unit of work (adapters/services/unit_of_work.py), never
through this object; the index is rebuilt off the event loop and swapped in one assignment.
One fence edited (the console's add, replace, delete) is applied to the live index in tens of
ms (geofences/edit.py), never waiting for a full rebuild; a full rebuild (start, bulk import,
reconnect) re-applies the edits made while it ran, so none is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time

from adapters import metrics
from geo_engine.models import PresenceConfig
from geo_engine.ports import FenceRepository, PresenceStore
from geo_engine.presence import PresenceEngine
from geofences.edit import with_fence, without_fence
from geofences.index import FenceIndex

log = logging.getLogger(__name__)

UNLINKED_PREFIX = "device:"


class LivePresence:
    def __init__(
        self,
        store: PresenceStore,
        fences: FenceRepository,
        config: PresenceConfig,
        *,
        h3_resolution: int = 11,
        device_links: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.fences = fences
        self.engine = PresenceEngine(config)
        self.index = FenceIndex.build([], h3_resolution)
        self.resolution = h3_resolution
        # device id -> customer id; changed only by identity links (adapters/services/identity.py)
        self.device_links: dict[str, str] = device_links if device_links is not None else {}
        self._rebuild_lock = asyncio.Lock()
        self._fences_wanted = 0  # generation of fence changes asked for
        self._fences_built = 0  # generation the live index reflects
        self._edit_lock = asyncio.Lock()  # one index swap at a time (edits and a build's end)
        self._building = False
        self._edited: set[str] = set()  # fences edited since the running build read them all

    async def start(self) -> None:
        await self.reload_fences()
        cursors, states = await self.store.load()
        self.engine.load(cursors, states)
        metrics.CUSTOMERS_INSIDE.set(self.engine.customers_inside())
        log.info(
            "presence loaded: %d fences, %d customers, %d inside",
            len(self.index),
            self.engine.active_customers(),
            self.engine.customers_inside(),
        )

    async def reload_fences(self) -> None:
        """Rebuild the index off the event loop, then swap it in one assignment.

        Rebuilds coalesce: a build takes seconds at 10 k fences, so changes made while one runs
        are all picked up by the next single build, not one build each. Single-fence edits
        keep going live meanwhile (on the old index), and are applied again to the new one
        before it is swapped in: the build's snapshot may predate them."""
        self._fences_wanted += 1
        mine = self._fences_wanted
        async with self._rebuild_lock:
            if self._fences_built >= mine:
                return  # a build that started after this change already covers it
            target = self._fences_wanted
            async with self._edit_lock:
                self._building, self._edited = True, set()  # before the read: none slips by
            try:
                fences = await self.fences.all()
                started = time.perf_counter()
                index = await asyncio.to_thread(FenceIndex.build, fences, self.resolution)
                metrics.INDEX_BUILD_SECONDS.observe(time.perf_counter() - started)
                async with self._edit_lock:
                    for fence_id in sorted(self._edited):
                        index = await self._edited_index(index, fence_id)
                    self.index = index
            finally:
                self._building = False
            self._fences_built = target
            metrics.FENCES.set(len(index))

    async def apply_fence_edit(self, fence_id: str) -> None:
        """One fence was created, replaced or deleted in the repository: read just it and make
        the live index agree. Idempotent, so a repeated or late broadcast is harmless; if the
        edit fails, a full rebuild is the fallback."""
        try:
            async with self._edit_lock:
                started = time.perf_counter()
                self.index = await self._edited_index(self.index, fence_id)
                if self._building:
                    self._edited.add(fence_id)
                metrics.FENCES.set(len(self.index))
            log.debug("fence %s edited in %.3f s", fence_id, time.perf_counter() - started)
        except Exception:
            log.exception("editing fence %s in the index failed: full rebuild", fence_id)
            await self.reload_fences()

    async def _edited_index(self, index: FenceIndex, fence_id: str) -> FenceIndex:
        fence = await self.fences.get(fence_id)
        if fence is None:
            return await asyncio.to_thread(without_fence, index, fence_id)
        return await asyncio.to_thread(with_fence, index, fence)

    def customer_for(self, device_id: str) -> str:
        """A device not linked to a customer is its own customer until linked."""
        return self.device_links.get(device_id) or UNLINKED_PREFIX + device_id
