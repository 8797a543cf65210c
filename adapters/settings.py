"""Runtime settings, from the environment (prefix GEO_ENGINE_) with documented defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_engine.models import PresenceConfig
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

    # geofences
    h3_resolution: int = Field(default=11, ge=7, le=13)
    max_fence_area_km2: float = 25.0
    max_fence_radius_m: float = 5_000.0
    max_fence_vertices: int = 10_000
    max_import_features: int = 10_000

    # pings
    max_batch_size: int = Field(default=5_000, ge=1)
    max_future_skew_s: float = 120.0  # refused beyond: a future fix would make real ones "late"
    max_past_age_s: float = 7 * 86_400.0  # a fix older than this is refused
    raw_fix_retention_s: float = 86_400.0  # 0 = raw fixes are never stored

    # presence (see geo_engine.models.PresenceConfig for meanings)
    enter_accuracy_fraction: float = 0.5
    max_enter_accuracy_m: float = 100.0
    unknown_accuracy_m: float = 30.0
    exit_buffer_m: float = 25.0
    exit_after_s: float = 180.0
    dwell_after_s: float = 300.0
    stale_exit_after_s: float = 4 * 3600.0
    max_speed_mps: float = 70.0
    sweep_interval_s: float = 5.0
    # the sweep judges "due" this long in the past: phones upload fixes in batches every minute
    # or two, and a timeout must not be declared while the fixes that cancel it are in flight
    sweep_grace_s: float = 60.0

    def presence_config(self) -> PresenceConfig:
        return PresenceConfig(
            enter_accuracy_fraction=self.enter_accuracy_fraction,
            max_enter_accuracy_m=self.max_enter_accuracy_m,
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
