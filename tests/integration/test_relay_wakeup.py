"""The relay wakes on the outbox NOTIFY (migration 012) instead of waiting for its poll, and
records a fast reply before a slow one of the same batch has answered."""

from __future__ import annotations

import asyncio
import time

from adapters.delivery.gateways.base import Message, Result
from adapters.delivery.relay import Relay
from tests.integration.test_relay import Fake, add_rows, cfg, row


async def test_a_committed_offer_is_claimed_at_once_not_after_the_poll(clean_pool) -> None:  # type: ignore[no-untyped-def]
    gw = Fake(Result.sent("SM1"))
    relay = Relay(clean_pool, {"sms": gw}, cfg(poll_interval_s=30.0))
    task = asyncio.create_task(relay.run_forever())
    try:
        await asyncio.sleep(0.3)  # the first (empty) round is done: the relay now waits 30 s
        t0 = time.monotonic()
        (oid,) = await add_rows(clean_pool, send_after=time.time() - 1)
        while (await row(clean_pool, oid))["status"] != "sent":
            assert time.monotonic() - t0 < 5.0, "the relay did not wake on NOTIFY"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(gw.calls) == 1


class SlowForOne:
    """Answers at once, except for one message that waits until `release` is set: the test
    decides when the slow reply comes, so no timing is assumed."""

    name = "slowish"

    def __init__(self, slow_id: int) -> None:
        self.slow_id = slow_id
        self.release = asyncio.Event()

    async def send(self, msg: Message) -> Result:
        if msg.id == self.slow_id:
            await self.release.wait()
        return Result.sent(f"SM{msg.id}")

    async def aclose(self) -> None:
        return None


async def test_a_fast_reply_is_recorded_while_a_slow_one_is_pending(clean_pool) -> None:  # type: ignore[no-untyped-def]
    slow, fast = await add_rows(clean_pool, 2, send_after=time.time() - 1)
    gw = SlowForOne(slow)
    relay = Relay(clean_pool, {"sms": gw}, cfg())
    round_ = asyncio.create_task(relay.run_once())
    t0 = time.monotonic()
    # the slow reply is held until the fast one is recorded: were the batch recorded as a
    # whole, this loop would never see it (the guard is a hang guard, not a speed bound)
    while (await row(clean_pool, fast))["provider_id"] != f"SM{fast}":
        assert time.monotonic() - t0 < 60.0, "the fast reply waited for the slow one"
        await asyncio.sleep(0.02)
    assert (await row(clean_pool, slow))["status"] == "sending"
    gw.release.set()
    stats = await round_
    assert (stats.claimed, stats.sent) == (2, 2)
    assert (await row(clean_pool, slow))["status"] == "sent"


async def test_the_listener_comes_back_after_its_backend_is_terminated(clean_pool) -> None:  # type: ignore[no-untyped-def]
    gw = Fake(Result.sent("SM1"))
    relay = Relay(clean_pool, {"sms": gw}, cfg(poll_interval_s=0.2))
    task = asyncio.create_task(relay.run_forever())
    try:
        await asyncio.sleep(0.3)
        killed = await clean_pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE 'LISTEN%'"
        )
        assert killed == 1
        t0 = time.monotonic()
        while not await clean_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        ):
            assert time.monotonic() - t0 < 10.0, "the relay did not LISTEN again"
            await asyncio.sleep(0.05)
        (oid,) = await add_rows(clean_pool, send_after=time.time() - 1)
        while (await row(clean_pool, oid))["status"] != "sent":
            assert time.monotonic() - t0 < 10.0, "the relay stopped sending"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)  # the loop never died
