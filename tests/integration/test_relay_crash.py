"""kill -9 of a real `geo-engine relay` process in the middle of a webhook delivery: the
receiver got the request (and acted on it) but the relay died before recording the answer. A
second relay takes the row again once the lease lapses and delivers it under the SAME
webhook-id, so the receiver can de-duplicate; our outbox ends `sent` exactly once."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.fakes.webhook import FakeReceiver
from tests.integration.test_relay import add_rows

SECRET = "whsec_" + base64.b64encode(b"crash-test-secret").decode()


def start_relay(database_url: str, url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GEO_ENGINE_DATA_DIR": str(data_dir),
        "GEO_ENGINE_DELIVERY_PUSH_GATEWAY": "webhook",
        "GEO_ENGINE_WEBHOOK_URL": url,
        "GEO_ENGINE_WEBHOOK_SECRET": SECRET,
        "GEO_ENGINE_RELAY_LEASE_S": "1.5",  # a dead relay's row is retaken after this
        "GEO_ENGINE_RELAY_POLL_INTERVAL_S": "0.1",
        "GEO_ENGINE_DELIVERY_TIMEOUT_S": "30",  # the hold must not end as a client timeout
    }
    cmd = [sys.executable, "-m", "adapters.cli", "relay", "--log-level", "warning"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def status_of(pool: asyncpg.Pool, oid: int) -> tuple[str, int]:
    r = await pool.fetchrow("SELECT status, attempts FROM outbox WHERE id = $1", oid)
    assert r is not None
    return r["status"], r["attempts"]


async def test_kill_9_mid_delivery_resends_under_the_same_webhook_id(
    clean_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    now = time.time()
    (oid,) = await add_rows(
        clean_pool, 1, channel="push", send_after=now - 1, expires_at=now + 3600
    )
    key = await clean_pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", oid)
    async with FakeReceiver(SECRET) as rx:
        gate = asyncio.Event()
        rx.hold = gate  # the first request gets no answer until the relay is dead
        first = start_relay(database_url, rx.url, tmp_path)
        try:
            await asyncio.wait_for(rx.held.wait(), 30)
            assert await status_of(clean_pool, oid) == ("sending", 1)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        gate.set()  # the receiver acts on it: only our side does not know
        await asyncio.sleep(0.05)
        assert list(rx.delivered) == [key]
        second = start_relay(database_url, rx.url, tmp_path)
        try:
            deadline = time.monotonic() + 30
            while (await status_of(clean_pool, oid))[0] != "sent":
                assert time.monotonic() < deadline, "the second relay did not deliver"
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
    assert await status_of(clean_pool, oid) == ("sent", 2)
    assert [r.headers["webhook-id"] for r in rx.requests] == [key, key]
    assert rx.requests[0].body == rx.requests[1].body
    assert rx.bad_signatures == 0
    assert list(rx.delivered) == [key]  # the receiver de-duplicated the resend
    attempts = await clean_pool.fetch(
        "SELECT attempt, outcome, gateway FROM delivery_attempts WHERE outbox_id = $1", oid
    )
    # the dead relay recorded nothing; the second one recorded its attempt (number 2)
    assert [tuple(a) for a in attempts] == [(2, "sent", "webhook")]
    sent = await clean_pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'")
    assert sent == 1
