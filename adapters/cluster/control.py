"""Broadcast changes every process must follow: fences and campaigns edited through one API
process, device links moved by an owner. Fire-and-forget on the bus; each process also re-reads
all of it when it reconnects to the bus (what it may have missed meanwhile)."""

from __future__ import annotations

import logging

import msgspec

from adapters.assembly import Engine
from adapters.bus.nats_bus import NatsBus
from adapters.services.live import UNLINKED_PREFIX
from geo_engine.ports import IdentityDirectory

log = logging.getLogger(__name__)


class _Change(msgspec.Struct, array_like=True):
    origin: str  # the process that made it (already followed it)
    subject: str = ""  # the fence created, replaced or deleted ("" for "fences": all of them)


_change = msgspec.msgpack.Decoder(_Change)
_links = msgspec.msgpack.Decoder(list[tuple[str, str | None]])


class Control:
    def __init__(self, engine: Engine, identities: IdentityDirectory, origin: str) -> None:
        self.engine = engine
        self.identities = identities
        self.origin = origin
        self.bus: NatsBus | None = None

    async def changed(self, kind: str, subject: str = "") -> None:
        """Follow a change made here, then tell every other process."""
        await self._follow(kind, subject)
        if self.bus is not None:
            await self.bus.broadcast(kind, msgspec.msgpack.encode(_Change(self.origin, subject)))

    async def handle(self, kind: str, data: bytes) -> None:
        if kind == "links":
            await self._links(_links.decode(data))
        elif kind == "reconnected":
            await self._resync()
        else:
            change = _change.decode(data)
            if change.origin != self.origin:
                await self._follow(kind, change.subject)

    async def _follow(self, kind: str, subject: str) -> None:
        e = self.engine
        if kind == "fences":
            if subject:  # one fence created or replaced: edit the live index (ms at 100 k)
                await e.live.apply_fence_edit(subject)
            else:  # a bulk import, or a sender that does not name the fence
                await e.live.reload_fences()
        elif kind == "fence_deleted":
            await self.engine.runtime.forget_fence(subject)
        elif kind == "campaigns":
            await e.decisions.reload()
        else:
            log.warning("unknown control message %r", kind)

    async def _links(self, moved: list[tuple[str, str | None]]) -> None:
        links = self.engine.live.device_links
        for device, customer in moved:
            if customer is None:
                links.pop(device, None)
            else:
                links[device] = customer
        # a device merged into its customer has no state of its own any more: whoever held it
        # reads that from storage
        await self.engine.uow.refresh([UNLINKED_PREFIX + d for d, _ in moved])

    async def _resync(self) -> None:
        e = self.engine
        fresh = await self.identities.device_links()
        e.live.device_links.clear()
        e.live.device_links.update(fresh)
        await e.live.reload_fences()
        await e.decisions.reload()
