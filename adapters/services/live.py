"""Live presence: the presence engine's state and the fence index it matches against, as every
service reads them (profiles, decisions, proximity, the ingest paths).

Changes to presence go through the unit of work (adapters/services/unit_of_work.py), never
through this object; the index is rebuilt off the event loop and swapped in one assignment.
"""

from __future__ import annotations

import asyncio
import logging
import time

from adapters import metrics
from geo_engine.models import PresenceConfig
from geo_engine.ports import FenceRepository, PresenceStore
from geo_engine.presence import PresenceEngine
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
        are all picked up by the next single build, not one build each."""
        self._fences_wanted += 1
        mine = self._fences_wanted
        async with self._rebuild_lock:
            if self._fences_built >= mine:
                return  # a build that started after this change already covers it
            target = self._fences_wanted
            fences = await self.fences.all()
            started = time.perf_counter()
            index = await asyncio.to_thread(FenceIndex.build, fences, self.resolution)
            metrics.INDEX_BUILD_SECONDS.observe(time.perf_counter() - started)
            self.index = index
            self._fences_built = target
            metrics.FENCES.set(len(index))

    def customer_for(self, device_id: str) -> str:
        """A device not linked to a customer is its own customer until linked."""
        return self.device_links.get(device_id) or UNLINKED_PREFIX + device_id
