"""The outbox relay's settings: how much it claims, how long a claim holds, how it retries and
paces. A plain value, so the settings (adapters/settings.py) build it without depending on the
relay, as they build the other parts' configs from the core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 100  # rows per claim
    lease_s: float = 60.0  # a claimed row is reclaimable after this (the relay died)
    max_attempts: int = 5  # then dead letter
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3_600.0
    jitter: float = 0.2  # the delay is drawn in [d * (1 - jitter), d]
    poll_interval_s: float = 1.0  # idle wait between claims
    concurrency: int = 16  # sends in flight per gateway and relay
    rate_per_s: float = 0.0  # sends per second per gateway and relay (0 = unlimited)
