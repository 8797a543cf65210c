"""The per-gateway rate limit: when the relay may call a gateway again. (The retry schedule,
backoff with jitter and Retry-After, is the core's: geo_engine/delivery/retry.py.)"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Spaces calls at least 1/rate apart (monotonic time); rate 0 = no limit."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
