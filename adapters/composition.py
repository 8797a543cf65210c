"""The composition root: settings in, a wired set of services out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from adapters import gc_policy
from adapters.assembly import Ports, assemble
from adapters.auth import KeyRing
from adapters.bus.nats_bus import NatsBus
from adapters.bus.server import resolve_nats_url
from adapters.cluster.checkpoint import CheckpointedTransactions, applying
from adapters.cluster.control import Control
from adapters.cluster.handlers import CommandHandlers
from adapters.cluster.submit import IngestLog
from adapters.cluster.worker import PartitionWorker, WorkerConfig, new_worker_id
from adapters.codecs.profile_doc import profile_json
from adapters.db.beacons import PgBeaconRepository, PgNfcTagRepository
from adapters.db.campaigns import PgCampaignRepository
from adapters.db.cluster import PgPartitionLeases
from adapters.db.connect import create_pool, resolve_url
from adapters.db.cursor_log import compact_forever
from adapters.db.fence_repo import PgFenceRepository
from adapters.db.identities import PgIdentityDirectory
from adapters.db.migrate import migrate
from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.delivery.customers import ConsentRecorder, DeliveryDirectory
from adapters.delivery.escalation import Escalator
from adapters.delivery.gateways.apns import ApnsGateway, ProviderToken
from adapters.delivery.gateways.base import Gateway
from adapters.delivery.gateways.fcm import FcmGateway
from adapters.delivery.gateways.fcm_auth import ServiceAccountTokenSource
from adapters.delivery.gateways.log_sink import LogSink
from adapters.delivery.gateways.push import PushRouter
from adapters.delivery.gateways.twilio import TwilioGateway
from adapters.delivery.gateways.webhook import WebhookGateway
from adapters.delivery.relay import Relay
from adapters.metrics import CUSTOMERS_HELD
from adapters.privacy.retention import Retention, purge_forever
from adapters.privacy.retention import maintain as maintain_raw_fix_days
from adapters.ratelimit import RateLimiter
from adapters.services.bandit import BanditRefresher
from adapters.services.decisions import DecisionService
from adapters.services.identity import IdentityService
from adapters.services.live import LivePresence
from adapters.services.presence import PresenceRuntime
from adapters.services.profiles import ProfileService
from adapters.services.proximity import ProximityService
from adapters.services.reactions import Reactions
from adapters.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    keys: KeyRing
    fences: PgFenceRepository
    presence: PgPresenceStore
    live: LivePresence  # the engine's state, the fence index, the device links
    runtime: PresenceRuntime  # GPS fixes and the sweep, through the unit of work
    profiles: ProfileService  # customer profiles and velocity (geo_engine/profile)
    decisions: DecisionService  # campaigns, offers, decisions (geo_engine/decision)
    campaigns: PgCampaignRepository  # the campaign store (and the API's reads of it)
    transactions: CheckpointedTransactions  # what a job opens to write through the ports
    reactions: Reactions  # what follows each change, in order (adapters/services/reactions.py)
    proximity: ProximityService  # beacon sightings and NFC taps
    identities: IdentityService  # identifier links and device merges
    bus: NatsBus  # NATS JetStream: the customer-keyed log, replies, broadcasts
    ingest: IngestLog  # what routes publish customer-keyed commands through
    control: Control  # fence / campaign changes followed here and broadcast to the others
    leases: PgPartitionLeases
    worker: PartitionWorker | None  # the partition owner (roles all and worker)
    # the outbox relay (adapters/delivery); its task runs in serve unless relay_enabled is off
    relay: Relay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0.0, 0.0))

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.worker is not None:
            await self.worker.stop()
        await self.bus.close()
        if self.relay is not None:
            await self.relay.aclose()
        await self.pool.close()


async def build_services(
    settings: Settings, *, background: bool = True, bus: bool = True
) -> Services:
    """`bus=False`: a tool (relay, backtest) that reads and writes storage only; it neither
    accepts customer-keyed input nor owns partitions."""
    url = await asyncio.to_thread(resolve_url, settings.database_url, settings.data_dir)
    # a transaction idle past the lease ttl belongs to a paused owner whose lease is gone
    pool = await create_pool(
        url, settings.db_pool_min, settings.db_pool_max, idle_in_transaction_s=settings.lease_ttl_s
    )
    applied = await migrate(pool)
    if applied:
        log.info("applied migrations: %s", ", ".join(f"{m.version:03d}_{m.name}" for m in applied))
    try:  # raw fixes' days ahead exist from the start; the retention job keeps them ahead
        await maintain_raw_fix_days(pool)
    except Exception:  # DEFAULT holds the fixes meanwhile; the job retries
        log.exception("raw fixes: creating the days ahead failed")
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    presence = PgPresenceStore(pool, store_raw_fixes=settings.raw_fix_retention_s > 0)
    campaigns = PgCampaignRepository(pool, redemption_valid_days=settings.redemption_valid_days)
    leases = PgPartitionLeases(pool)
    # every write of a command commits its log position (adapters/cluster/checkpoint.py)
    transactions = CheckpointedTransactions(PgTransactions(pool), leases)
    fences = PgFenceRepository(pool)
    identities = PgIdentityDirectory(pool)
    ports = Ports(
        transactions=transactions,
        presence=presence,
        fences=fences,
        identities=identities,
        profiles=PgProfileStore(pool),
        campaigns=campaigns,
        beacons=PgBeaconRepository(pool),
        tags=PgNfcTagRepository(pool),
    )
    engine = await assemble(settings, ports)
    bandit = None
    if settings.decision_ranking == "bandit":  # learned propensities: outcomes read at start
        bandit = BanditRefresher(
            campaigns,
            engine.decisions,
            window_s=settings.decision_bandit_window_days * 86400.0,
            interval_s=settings.decision_bandit_refresh_s,
        )
        await bandit.refresh()
    profiles, decisions, runtime = engine.profiles, engine.decisions, engine.runtime
    # read at each scrape (nothing a fix pays); an erasure replaces the profile state object
    CUSTOMERS_HELD.labels("presence").set_function(engine.live.engine.active_customers)
    CUSTOMERS_HELD.labels("profile").set_function(lambda: len(profiles.state))
    worker_id = new_worker_id()
    control = Control(engine, identities, origin=worker_id)
    nats_url = (
        ""
        if not bus
        else await asyncio.to_thread(resolve_nats_url, settings.nats_url, settings.data_dir)
    )
    log_bus = NatsBus(
        nats_url,
        prefix=settings.bus_prefix,
        partitions=settings.partitions,
        name=f"geo-engine-{settings.role}-{worker_id}",
        on_control=control.handle,
        max_age_s=settings.bus_max_age_s,
        duplicate_window_s=settings.bus_duplicate_window_s,
        publish_timeout_s=settings.bus_publish_timeout_s,
    )
    worker = None
    if bus:
        control.bus = log_bus
        await log_bus.connect()
    if bus and settings.role in ("all", "worker"):
        worker = PartitionWorker(
            bus=log_bus,
            leases=leases,
            engine=engine,
            handlers=CommandHandlers(engine, pool),
            transactions=transactions,
            config=WorkerConfig(
                partitions=settings.partitions,
                lease_ttl_s=settings.lease_ttl_s,
                heartbeat_s=settings.heartbeat_s,
                batch=settings.worker_batch,
                linger_s=settings.worker_linger_s,
            ),
            worker_id=worker_id,
            reads=profile_reader(settings, profiles),
        )
        await worker.start()
    elif bus:  # a stateless API process holds no customer's presence
        await engine.uow.resync(lambda _: False)
    svc = Services(
        settings,
        pool,
        KeyRing(pool, admin),
        fences,
        presence,
        engine.live,
        runtime,
        profiles=profiles,
        decisions=decisions,
        reactions=engine.reactions,
        proximity=engine.proximity,
        identities=engine.identities,
        campaigns=campaigns,
        transactions=transactions,
        bus=log_bus,
        ingest=IngestLog(log_bus, settings.partitions, settings.ingest_wait_timeout_s),
        control=control,
        leases=leases,
        worker=worker,
    )
    # an SMS STOP seen by the relay reaches the customer's owner through the log
    svc.relay = build_relay(settings, pool, svc.ingest if bus else profiles)
    svc.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    if background and worker is not None:
        # the sweeps of an owner: its customers only, fenced by its leases' epochs
        w = worker
        svc.tasks.append(
            asyncio.create_task(
                runtime.sweep_forever(
                    settings.sweep_interval_s, fence=lambda: applying(*w.epochs())
                )
            )
        )
        svc.tasks.append(
            asyncio.create_task(
                profiles.run_forever(
                    engine.reactions.after_crossings,
                    owns=w.owns,
                    fence=lambda: applying(*w.epochs()),
                    places=lambda: 0 in w.owned,  # one process folds the fixes into places
                )
            )
        )
    if background:
        gc_policy.settle()
        svc.tasks.append(
            asyncio.create_task(gc_policy.full_collections_forever(settings.gc_full_every_s))
        )
        retention = Retention.from_settings(settings)
        svc.tasks.append(asyncio.create_task(purge_forever(pool, retention)))
        svc.tasks.append(
            asyncio.create_task(compact_forever(pool, settings.cursor_compact_interval_s))
        )
        if bandit is not None:
            svc.tasks.append(asyncio.create_task(bandit.run_forever()))
        if settings.relay_enabled:
            svc.tasks.append(asyncio.create_task(svc.relay.run_forever()))
        if settings.relay_enabled and worker is not None:
            # follow-ups of offers that got no reaction, each decided by its customer's owner
            # (its memory is the fresh one), fenced like every owner's write
            owner = worker
            escalator = Escalator(
                decisions,
                transactions,
                interval_s=settings.escalation_interval_s,
                owns=owner.owns,
                fence=lambda: applying(*owner.epochs()),
            )
            svc.tasks.append(asyncio.create_task(escalator.run_forever()))
    return svc


def profile_reader(
    settings: Settings, profiles: ProfileService
) -> Callable[[bytes], Awaitable[bytes]]:
    """An owner's answer to "the profile of customer X" (JSON, null when none)."""
    weights = tuple(settings.velocity_interest_weights)

    async def read(customer_id: bytes) -> bytes:
        p = profiles.profile(customer_id.decode())
        doc = None if p is None else profile_json(p, weights, settings.places_h3_resolution)
        return json.dumps(doc).encode()

    return read


def build_gateways(settings: Settings, directory: DeliveryDirectory) -> dict[str, Gateway]:
    """Channel -> gateway, as configured (one httpx client per gateway)."""
    log_sink = LogSink()
    webhook: Gateway | None = None
    if "webhook" in (settings.delivery_sms_gateway, settings.delivery_push_gateway):
        webhook = WebhookGateway(
            url=settings.webhook_url,
            secret=settings.webhook_secret.get_secret_value(),
            is_disabled=directory.webhook_disabled,
            disable=directory.disable_webhook,
            timeout_s=settings.delivery_timeout_s,
        )
    sms: Gateway = log_sink
    if settings.delivery_sms_gateway == "twilio":
        sms = TwilioGateway(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            phone_of=directory.phone_of,
            on_opt_out=directory.revoke_sms,
            on_invalid_number=directory.mark_phone_invalid,
            base_url=settings.twilio_base_url,
            from_number=settings.twilio_from,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            status_callback=settings.twilio_status_callback,
            timeout_s=settings.delivery_timeout_s,
        )
    elif settings.delivery_sms_gateway == "webhook" and webhook is not None:
        sms = webhook
    push: Gateway = log_sink
    if settings.delivery_push_gateway == "fcm":
        push = build_fcm(settings, directory)
    elif settings.delivery_push_gateway == "native":
        providers: dict[str, Gateway] = {}
        if settings.fcm_project_id:
            providers["fcm"] = build_fcm(settings, directory)
        if settings.apns_key_file is not None:
            providers["apns"] = build_apns(settings, directory)
        if not providers:
            log.warning("native push without FCM or APNs settings: push offers dead-letter")
        push = PushRouter(providers, directory.push_providers_of)
    elif settings.delivery_push_gateway == "webhook" and webhook is not None:
        push = webhook
    return {"sms": sms, "push": push}


def build_fcm(settings: Settings, directory: DeliveryDirectory) -> FcmGateway:
    """With a service-account key, tokens by the JWT exchange; else the static token."""
    token_source: Callable[[], Awaitable[str]]
    invalidate: Callable[[], None] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    if settings.fcm_service_account_file is not None:
        source = ServiceAccountTokenSource.from_file(
            settings.fcm_service_account_file, timeout_s=settings.delivery_timeout_s
        )
        token_source, invalidate, close = source, source.invalidate, source.aclose
    else:
        token = settings.fcm_access_token.get_secret_value()

        async def bearer() -> str:
            return token

        token_source = bearer
    return FcmGateway(
        project_id=settings.fcm_project_id,
        token_source=token_source,
        tokens_of=directory.push_tokens_of,
        remove_token=directory.remove_push_token,
        invalidate_token=invalidate,
        close_token_source=close,
        base_url=settings.fcm_base_url,
        timeout_s=settings.delivery_timeout_s,
    )


def build_apns(settings: Settings, directory: DeliveryDirectory) -> ApnsGateway:
    assert settings.apns_key_file is not None
    key = ProviderToken(
        settings.apns_key_file.read_text(), settings.apns_key_id, settings.apns_team_id
    )
    return ApnsGateway(
        provider_token=key,
        topic=settings.apns_topic,
        tokens_of=directory.apns_tokens_of,
        remove_token=directory.remove_push_token,
        base_url=settings.apns_base_url,
        timeout_s=settings.delivery_timeout_s,
    )


def build_relay(settings: Settings, pool: asyncpg.Pool, consents: ConsentRecorder | None) -> Relay:
    gateways = build_gateways(settings, DeliveryDirectory(pool, consents))
    return Relay(pool, gateways, settings.relay_config())
