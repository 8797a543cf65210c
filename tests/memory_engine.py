"""The application services on the in-memory ports (no database), wired by the same
`adapters.assembly.assemble` that adapters/composition.py `build_services` uses: presence,
profiles, decisions, the reaction pipeline, the unit of work, the GPS runtime, identity links.

Times come from one `Clock` every service reads, fixed unless a test moves it, so decisions,
velocity windows and the ping age checks do not depend on when the tests run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from adapters.assembly import Ports, assemble
from adapters.codecs.events import EventRow, decode_events
from adapters.codecs.fix_columns import Fixes, fixes_of
from adapters.codecs.pings import decode_pings
from adapters.memory.beacons import MemoryBeaconRegistry, MemoryNfcTagRegistry
from adapters.memory.campaigns import MemoryCampaignStore
from adapters.memory.identities import MemoryIdentityDirectory
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryFenceRepository, MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from adapters.services.behaviour_events import Resolved
from adapters.services.decisions import DecisionService
from adapters.services.identity import IdentityService
from adapters.services.live import LivePresence
from adapters.services.presence import PresenceRuntime
from adapters.services.profiles import ProfileService
from adapters.services.reactions import Reactions
from adapters.services.unit_of_work import PresenceUnitOfWork
from adapters.settings import Settings
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus
from geofences.validation import fence_from_feature
from tests.helpers import ALWAYS_OPEN, LAT0, LON0, offset, square_feature

# Tuesday 2026-11-24 11:00, Paris: the tests' "now"
T = datetime(2026, 11, 24, 11, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
FAR = offset(LAT0, LON0, 400, 0)  # 400 m north of the store: outside every test fence
RIVAL = offset(LAT0, LON0, 0, 600)  # the competitor's centre, 600 m east


class Clock:
    """A clock the test sets: every service of one `MemoryServices` reads this one."""

    def __init__(self, now: float = T) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class MemoryServices:
    settings: Settings
    clock: Clock
    fences: MemoryFenceRepository
    presence: MemoryPresenceStore
    profile_store: MemoryProfileStore
    campaigns: MemoryCampaignStore
    identity_directory: MemoryIdentityDirectory
    transactions: MemoryTransactions
    live: LivePresence
    profiles: ProfileService
    decisions: DecisionService
    reactions: Reactions
    uow: PresenceUnitOfWork
    runtime: PresenceRuntime
    identities: IdentityService

    # --- inputs, decoded as the API routes decode them --------------------------------------
    def pings(self, rows: Sequence[Mapping[str, Any]]) -> Fixes:
        """A `POST /v1/pings` body's rows, decoded at the clock's now, customers resolved: what
        an API process publishes (adapters/api/ingest.py `ping_parts`) for `runtime.ingest`."""
        s = self.settings
        body = json.dumps({"pings": list(rows)}).encode()
        decoded = decode_pings(
            body,
            max_batch=s.max_batch_size,
            now=self.clock(),
            max_future_s=s.max_future_skew_s,
            max_age_s=s.max_past_age_s,
        )
        assert decoded.errors == [], decoded.errors
        resolve = self.runtime.customer_for
        return fixes_of(
            decoded, [r.customer_id or resolve(r.device_id or "") for r in decoded.rows]
        )

    def events(self, rows: Sequence[Mapping[str, Any]]) -> list[Resolved]:
        """A `POST /v1/events` body's rows (by customer_id), decoded at the clock's now."""
        s = self.settings
        body = json.dumps({"events": list(rows)}).encode()
        decoded = decode_events(
            body,
            max_batch=s.events_max_batch_size,
            now=self.clock(),
            max_future_s=s.events_max_future_skew_s,
            max_age_s=s.events_max_past_age_s,
        )
        assert decoded.errors == [], decoded.errors
        return [resolved(r) for r in decoded.rows]

    async def grant(
        self, customer_id: str, *purposes: ConsentPurpose, at: float | None = None
    ) -> None:
        """The customer agrees to `purposes` (through the profile service, as the API does)."""
        when = self.clock() - 86400.0 if at is None else at
        consent = Consent(ConsentStatus.GRANTED, when, "app")
        await self.profiles.put_consents(customer_id, dict.fromkeys(purposes, consent))


def resolved(row: EventRow) -> Resolved:
    assert row.event.customer_id is not None
    return Resolved(row, row.event.customer_id)


async def build_memory_services(
    *,
    features: Iterable[Mapping[str, Any]] = (),
    offers: Iterable[Mapping[str, Any]] = (),
    campaigns: Iterable[Mapping[str, Any]] = (),
    clock: Clock | None = None,
    presence_type: type[MemoryPresenceStore] = MemoryPresenceStore,
    campaign_type: type[MemoryCampaignStore] = MemoryCampaignStore,
    **overrides: Any,
) -> MemoryServices:
    """`build_services` (adapters/composition.py) on the memory ports, with ALWAYS_OPEN |
    `overrides` settings, the fences, offers and campaigns given already stored and loaded, and
    no background task. `presence_type` / `campaign_type`: a subclass of the memory store to
    use (one that injects a failure, say)."""
    settings = Settings(**(ALWAYS_OPEN | overrides))
    clock = clock or Clock()
    presence = presence_type()
    fences = MemoryFenceRepository()
    fences.presence = presence
    for feature in features:
        await fences.upsert(fence_from_feature(feature, settings.validation_limits()))
    directory = MemoryIdentityDirectory(presence, clock=clock)
    transactions = MemoryTransactions()
    profile_store = MemoryProfileStore(presence, clock=clock)
    store = campaign_type(presence, profile_store, clock=clock)
    for doc in offers:
        assert await store.put_offer(doc["id"], dict(doc), create=True) is not None
    for doc in campaigns:
        assert await store.put_campaign(doc["id"], dict(doc), create=True) is not None
    ports = Ports(
        transactions=transactions,
        presence=presence,
        fences=fences,
        identities=directory,
        profiles=profile_store,
        campaigns=store,
        beacons=MemoryBeaconRegistry(fences, clock=clock),
        tags=MemoryNfcTagRegistry(fences, clock=clock),
    )
    engine = await assemble(settings, ports, clock=clock)
    return MemoryServices(
        settings=settings,
        clock=clock,
        fences=fences,
        presence=presence,
        profile_store=profile_store,
        campaigns=store,
        identity_directory=directory,
        transactions=transactions,
        live=engine.live,
        profiles=engine.profiles,
        decisions=engine.decisions,
        reactions=engine.reactions,
        uow=engine.uow,
        runtime=engine.runtime,
        identities=engine.identities,
    )


# --- documents ------------------------------------------------------------------------------
def store_feature(fence_id: str = "opera", **kw: Any) -> dict[str, Any]:
    """A 100 m square store fence around (LAT0, LON0), named "Opéra"."""
    props: dict[str, Any] = {"store_id": "opera", "name": "Opéra"} | kw
    return square_feature(fence_id, **props)


def competitor_feature(fence_id: str = "rival") -> dict[str, Any]:
    return square_feature(fence_id, *RIVAL, kind="competitor", store_id=None, name="Rival")


def offer_doc(oid: str = "o1", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": oid,
        "name": "10% off",
        "content": {
            "sms": {"text": "Bonjour {first_name}, -10% chez {store_name} : {code}. STOP 36180"},
            "push": {
                "title": "-10% chez {store_name}",
                "body": "Votre code {code}",
                "deep_link": "app://o/1",
            },
        },
        "valid_from": T - 86400,
        "valid_until": T + 30 * 86400,
        "value": 12.5,
        "category": "shoes",
        "redemption_cap": 1000,
    }
    doc.update(kw)
    return doc


def campaign_doc(cid: str = "c1", **kw: Any) -> dict[str, Any]:
    """Live; fires on entering a store fence; push then SMS."""
    doc: dict[str, Any] = {
        "id": cid,
        "status": "live",
        "start": T - 86400,
        "end": T + 30 * 86400,
        "triggers": [{"type": "presence", "event": "enter", "fence_kinds": ["store"]}],
        "offer_ids": ["o1"],
        "channels": ["push", "sms"],
    }
    doc.update(kw)
    return doc


def at(lat_lon: tuple[float, float], who: str, ts: float) -> dict[str, Any]:
    """One ping row of `who` at `lat_lon`, 5 m accuracy."""
    lat, lon = lat_lon
    return {"customer_id": who, "lat": lat, "lon": lon, "ts": ts, "accuracy_m": 5.0}


STORE = (LAT0, LON0)
