"""A per-API-key rate limit: a token bucket per key, in memory, since one process owns a
partition of the traffic (DESIGN.md)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per key: `rate` requests per second sustained, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float, clock: object = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def retry_after(self, key: str) -> int:
        """0 when the request may go now (and is counted), else seconds to wait."""
        if self.rate <= 0:
            return 0
        now: float = self._clock()  # type: ignore[operator]
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - b.tokens) / self.rate))
