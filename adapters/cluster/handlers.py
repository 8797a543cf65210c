"""What a partition owner does with each command of the log: the one place a command meets the
services. Each handler runs under the command's log position (adapters/cluster/checkpoint.py),
so the transaction it opens commits the position with the effects.

A refusal the client must see (a tap whose SUN fails, an identifier linked elsewhere) is a reply,
not an error: the command is applied — as "refused" — and the partition moves on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.assembly import Engine
from adapters.cluster import commands as c
from adapters.codecs.fix_columns import Fixes, fixes_of
from adapters.codecs.nfc_sun import TapRefused
from adapters.codecs.owntracks import Beacon
from adapters.codecs.pings import DecodedPings
from adapters.db import owntracks as owntracks_db
from adapters.services.erasure import erase_customer
from adapters.services.identity import IdentityConflict
from adapters.services.live import UNLINKED_PREFIX
from adapters.services.proximity import Tap

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    reply: bytes
    # device -> its customer now (None: its own again): every process updates its link cache,
    # and the owner of the device's former customer forgets what it held of it
    links: Sequence[tuple[str, str | None]] = ()


class CommandHandlers:
    def __init__(self, engine: Engine, pool: Any) -> None:
        self.engine = engine
        self.pool = pool  # OwnTracks' own records (adapters/db/owntracks.py)

    async def handle(self, cmd: c.Command) -> Handled:
        e = self.engine
        match cmd:
            case Fixes():
                return Handled(c.reply_ok(await e.runtime.ingest(cmd)))
            case c.Pings(rows, row_index, ts):  # published by an earlier version
                cids = [r.customer_id or "" for r in rows]  # resolved by the API process
                fixes = fixes_of(DecodedPings(rows, row_index, ts, []), cids)
                return Handled(c.reply_ok(await e.runtime.ingest(fixes)))
            case c.Sightings(rows):
                return Handled(c.reply_ok(await e.proximity.sightings(rows)))
            case c.NfcTap(cid, device_id, tag_id, ts, sun):
                try:
                    out = await e.proximity.tap(Tap(cid, device_id, tag_id, ts, sun))
                except TapRefused as exc:
                    return Handled(c.reply_refused(exc.status, exc.field, exc.reason))
                return Handled(c.reply_ok(out))
            case c.Events(rows):
                resolved = [r.resolved() for r in rows]
                ingested = await e.profiles.ingest(resolved, e.reactions.after_behaviour)
                return Handled(c.reply_ok(ingested))
            case c.Consents(cid, consents):
                return Handled(c.reply_ok(await e.profiles.put_consents(cid, consents)))
            case c.CustomerRecord(cid, attrs, consents):
                stored = await e.profiles.put_customer(cid, attrs, consents)
                return Handled(c.reply_ok(stored))
            case c.Link(cid, pairs):
                return await self._link(cid, pairs)
            case c.Unlink(cid, pairs):
                try:
                    n = await e.identities.unlink(cid, pairs)
                except IdentityConflict as exc:
                    status = 404 if "not linked" in exc.reason else 409
                    return Handled(c.reply_refused(status, f"identifiers[{exc.index}]", exc.reason))
                return Handled(c.reply_ok(n), [(v, None) for t, v in pairs if t == "device"])
            case c.Erase(cid):
                devices = [d for d, owner in e.live.device_links.items() if owner == cid]
                done = await erase_customer(e.runtime, e.profiles, cid)
                return Handled(c.reply_ok(done.rows), [(d, None) for d in devices])
            case c.OwnTracksBeacon(device_id, cid, beacon):
                return Handled(c.reply_ok(await self._owntracks_beacon(device_id, cid, beacon)))
            case c.OwnTracksTransition(device_id, cid, transition):
                if self._refused(cid):
                    return Handled(c.reply_ok("ignored"))  # location data: the same consent
                new = await owntracks_db.insert_transition(self.pool, device_id, cid, transition)
                return Handled(c.reply_ok("recorded" if new else "duplicate"))
        raise TypeError(f"no handler for {type(cmd).__name__}")  # pragma: no cover

    async def _link(self, cid: str, pairs: list[tuple[str, str]]) -> Handled:
        e = self.engine
        # a device's own presence may belong to another partition (another owner's memory):
        # what storage holds of it is what merges into the customer
        await e.uow.refresh([UNLINKED_PREFIX + v for t, v in pairs if t == "device"])
        try:
            result = await e.identities.link(cid, pairs)
        except IdentityConflict as exc:
            return Handled(c.reply_refused(409, f"identifiers[{exc.index}]", exc.reason))
        return Handled(c.reply_ok(result), [(v, cid) for t, v in pairs if t == "device"])

    def _refused(self, cid: str) -> bool:
        gate = self.engine.runtime.location_gate
        return gate is not None and gate(cid) is not None

    async def _owntracks_beacon(self, device_id: str, cid: str, beacon: Beacon) -> str:
        outcome = await self.engine.proximity.ibeacon_report(
            cid,
            uuid=beacon.uuid,
            major=beacon.major,
            minor=beacon.minor,
            rssi=beacon.rssi,
            ios_proximity=beacon.proximity,
            ts=beacon.ts,
        )
        if self._refused(cid):
            return "ignored"  # not applied by the sightings path either: keep nothing
        new = await owntracks_db.insert_beacon(self.pool, device_id, cid, beacon)
        return outcome if new else "duplicate"
