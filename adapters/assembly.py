"""The application services wired over a set of ports, PostgreSQL or memory alike: the one
wiring both the composition root (adapters/composition.py) and the tests' memory engine
(tests/memory_engine.py) use, so the tests exercise the order production runs in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.services.consent import LocationConsentGate
from adapters.services.decisions import DecisionService
from adapters.services.identity import IdentityService
from adapters.services.live import LivePresence
from adapters.services.presence import PresenceRuntime
from adapters.services.profiles import ProfileService
from adapters.services.proximity import ProximityConfig, ProximityService
from adapters.services.reactions import Reactions
from adapters.services.unit_of_work import PresenceUnitOfWork
from adapters.settings import Settings
from geo_engine.decision.ports import CampaignStore
from geo_engine.decision.sms_mentions import SmsMentions
from geo_engine.ports import FenceRepository, IdentityDirectory, PresenceStore, Transactions
from geo_engine.profile.ports import ProfileStore
from geo_engine.proximity import DistanceModel, Proximity, RangingConfig
from geo_engine.proximity_ports import BeaconRegistry, NfcTagRegistry


@dataclass(frozen=True, slots=True)
class Ports:
    transactions: Transactions
    presence: PresenceStore
    fences: FenceRepository
    identities: IdentityDirectory
    profiles: ProfileStore
    campaigns: CampaignStore
    beacons: BeaconRegistry
    tags: NfcTagRegistry


@dataclass(frozen=True, slots=True)
class Engine:
    live: LivePresence  # what every service reads: the engine's state, the index, the links
    profiles: ProfileService
    decisions: DecisionService
    reactions: Reactions
    uow: PresenceUnitOfWork
    runtime: PresenceRuntime
    proximity: ProximityService
    identities: IdentityService


def proximity_config(settings: Settings) -> ProximityConfig:
    return ProximityConfig(
        ranging=RangingConfig(
            model=DistanceModel(settings.beacon_distance_model),
            path_loss_exponent=settings.beacon_path_loss_exponent,
            max_proximity=Proximity(settings.beacon_max_proximity),
            max_distance_m=settings.beacon_max_distance_m,
        ),
        default_measured_power=settings.beacon_default_measured_power,
        beacon_exit_after_s=settings.beacon_exit_after_s,
        nfc_hold_s=settings.nfc_hold_s,
    )


async def assemble(
    settings: Settings, ports: Ports, *, clock: Callable[[], float] = time.time
) -> Engine:
    """Load presence, profiles and the live campaigns from `ports` and wire the services."""
    live = LivePresence(
        ports.presence,
        ports.fences,
        settings.presence_config(),
        h3_resolution=settings.h3_resolution,
        device_links=await ports.identities.device_links(),
    )
    await live.start()
    profiles = ProfileService(
        ports.profiles,
        ports.transactions,
        settings.profile_config(),
        settings.places_config(),
        live,
        sweep_interval_s=settings.velocity_sweep_interval_s,
        rfm_refresh_s=settings.rfm_refresh_interval_s,
        places_refresh_s=settings.places_refresh_interval_s,
        clock=clock,
    )
    await profiles.start()
    decisions = DecisionService(
        ports.campaigns,
        profiles,
        live,
        settings.decision_config(),
        clock=clock,
        mentions=SmsMentions(settings.sms_sender_name, settings.sms_opt_out_text),
        fix_max_age_s=settings.event_fix_max_age_s,
        call_due_s=settings.call_task_due_s,
    )
    await decisions.reload()
    # what follows each change, in order, in its transaction (adapters/services/reactions.py)
    reactions = Reactions(profiles, decisions)
    uow = PresenceUnitOfWork(live.engine, ports.presence, ports.transactions, reactions)
    # every location signal passes the consent gate before it is processed or stored
    gate = LocationConsentGate(profiles, require=settings.require_location_consent)
    runtime = PresenceRuntime(
        live,
        uow,
        location_gate=gate.reason,
        keep_raw_fixes=settings.raw_fix_retention_s > 0,
        sweep_grace_s=settings.sweep_grace_s,
        clock=clock,
    )
    return Engine(
        live=live,
        profiles=profiles,
        decisions=decisions,
        reactions=reactions,
        uow=uow,
        runtime=runtime,
        proximity=ProximityService(runtime, ports.beacons, ports.tags, proximity_config(settings)),
        identities=IdentityService(runtime, ports.identities),
    )
