"""When the relay may call a gateway again: the retry schedule (exponential backoff with
jitter, never sooner than Retry-After) and the per-gateway rate limit."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.delivery.relay import RelayConfig


def backoff_s(
    attempt: int, cfg: RelayConfig, rng: random.Random, retry_after: float | None = None
) -> float:
    """Delay before the attempt after `attempt` (1-based)."""
    d = min(cfg.backoff_max_s, cfg.backoff_base_s * 2.0 ** max(0, attempt - 1))
    d *= 1.0 - cfg.jitter * rng.random()
    if retry_after is not None:
        d = max(d, retry_after)
    return d


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
