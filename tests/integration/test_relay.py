"""The outbox relay on a real PostgreSQL: claims with SKIP LOCKED, exact attempt counts against
the configured backoff, Retry-After, expiry, dead letters and their re-drive, no duplicate
delivery across two concurrent relays, and the resend under the same key after a crash."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from adapters.db.connect import create_pool
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import Message, Result
from adapters.delivery.gateways.fcm import FcmGateway
from adapters.delivery.relay import Relay
from geo_engine.delivery.config import RelayConfig
from geo_engine.delivery.retry import backoff_s

T0 = time.time()


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Fake:
    """A counting gateway answering from a script (the last answer repeats)."""

    name = "fake"

    def __init__(self, *answers: Result, delay_s: float = 0.0) -> None:
        self.answers = list(answers) or [Result.sent("p-1")]
        self.calls: list[Message] = []
        self.delay_s = delay_s

    async def send(self, msg: Message) -> Result:
        self.calls.append(msg)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        i = min(len(self.calls), len(self.answers)) - 1
        return self.answers[i]

    async def aclose(self) -> None:
        return None


async def add_rows(
    pool: asyncpg.Pool,
    n: int = 1,
    *,
    send_after: float = T0 - 1,
    expires_at: float = T0 + 3600,
    channel: str = "sms",
    customer: str = "alice",
) -> list[int]:
    ids: list[int] = []
    async with pool.acquire() as conn:
        start = await conn.fetchval("SELECT count(*) FROM outbox")
        for i in range(start, start + n):
            did = await conn.fetchval(
                "INSERT INTO decisions (customer_id, trigger_kind, trigger_name,"
                " trigger_instance, ts, outcome, traces) VALUES ($1, 'presence', 'enter', $2,"
                " $3, 'send', '[]') RETURNING id",
                customer,
                f"pe:{i}",
                dt(send_after),
            )
            oid = await conn.fetchval(
                "INSERT INTO outbox (decision_id, idempotency_key, customer_id, campaign_id,"
                " trigger_instance, offer_id, channel, payload, send_after, expires_at)"
                " VALUES ($1, $2, $3, 'c1', $4, 'o1', $5, $6, $7, $8) RETURNING id",
                did,
                f"{customer}|c1|pe:{i}",
                customer,
                f"pe:{i}",
                channel,
                {"sms": {"text": "Bonjour, -10% chez nous"}, "push": {"title": "t", "body": "b"}},
                dt(send_after),
                dt(expires_at),
            )
            ids.append(oid)
    return ids


def cfg(**kw: object) -> RelayConfig:
    base: dict[str, object] = {
        "max_attempts": 4,
        "backoff_base_s": 10.0,
        "backoff_max_s": 1000.0,
        "jitter": 0.2,
        "lease_s": 60.0,
        "batch_size": 50,
    }
    base.update(kw)
    return RelayConfig(**base)  # type: ignore[arg-type]


async def row(pool: asyncpg.Pool, oid: int) -> asyncpg.Record:
    r = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert r is not None
    return r


async def test_sends_due_rows_once_and_records_the_provider_id(clean_pool) -> None:  # type: ignore[no-untyped-def]
    due = await add_rows(clean_pool, 2)
    later = await add_rows(clean_pool, 1, send_after=T0 + 600)
    gw = Fake(Result.sent("SM123", 201))
    relay = Relay(clean_pool, {"sms": gw}, cfg(), clock=Clock())
    stats = await relay.drain()
    assert (stats.claimed, stats.sent) == (2, 2)
    assert sorted(m.id for m in gw.calls) == due
    for oid in due:
        r = await row(clean_pool, oid)
        assert (r["status"], r["attempts"], r["provider_id"]) == ("sent", 1, "SM123")
    assert (await row(clean_pool, later[0]))["status"] == "pending"
    assert (await relay.drain()).claimed == 0  # nothing sent twice


async def test_exact_attempts_against_the_schedule_then_dead_letter(clean_pool) -> None:  # type: ignore[no-untyped-def]
    (oid,) = await add_rows(clean_pool)
    clock = Clock()
    gw = Fake(Result.retry("http_503", 503))
    c = cfg(max_attempts=4, backoff_base_s=10.0, jitter=0.2)
    relay = Relay(clean_pool, {"sms": gw}, c, clock=clock, rng=random.Random(1))
    expected = random.Random(1)
    for attempt in range(1, 4):
        assert (await relay.run_once()).retried == 1
        r = await row(clean_pool, oid)
        assert (r["status"], r["attempts"]) == ("pending", attempt)
        delay = r["next_attempt_at"].timestamp() - clock.t
        nominal = 10.0 * 2 ** (attempt - 1)
        assert delay == pytest.approx(backoff_s(attempt, c, expected), abs=1e-3)
        assert nominal * 0.8 - 1e-3 <= delay <= nominal + 1e-3
        clock.t += delay - 0.5  # not yet due: nothing claimed
        assert (await relay.run_once()).claimed == 0
        clock.t += 0.5
    stats = await relay.run_once()
    assert stats.dead == 1
    r = await row(clean_pool, oid)
    assert (r["status"], r["attempts"], r["last_error"]) == ("dead", 4, "http_503")
    assert len(gw.calls) == 4
    clock.t += 10_000
    assert (await relay.drain()).claimed == 0
    outcomes = [
        a["outcome"]
        for a in await clean_pool.fetch(
            "SELECT outcome FROM delivery_attempts WHERE outbox_id = $1 ORDER BY id", oid
        )
    ]
    assert outcomes == ["retry", "retry", "retry", "dead"]


async def test_retry_after_is_honoured(clean_pool) -> None:  # type: ignore[no-untyped-def]
    (oid,) = await add_rows(clean_pool)
    clock = Clock()
    gw = Fake(Result.retry("too_many_requests", 429, retry_after_s=120.0), Result.sent("SM1"))
    relay = Relay(clean_pool, {"sms": gw}, cfg(backoff_base_s=1.0), clock=clock)
    await relay.run_once()
    r = await row(clean_pool, oid)
    assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 120.0, abs=1e-3)
    clock.t += 119
    assert (await relay.run_once()).claimed == 0
    clock.t += 1
    assert (await relay.run_once()).sent == 1
    assert len(gw.calls) == 2


async def test_expired_rows_are_counted_never_sent(clean_pool) -> None:  # type: ignore[no-untyped-def]
    (stale,) = await add_rows(clean_pool, send_after=T0 - 100, expires_at=T0 - 1)
    (short,) = await add_rows(clean_pool, expires_at=T0 + 30)
    clock = Clock()
    gw = Fake(Result.retry("http_500", 500))
    relay = Relay(clean_pool, {"sms": gw}, cfg(backoff_base_s=60.0, jitter=0.0), clock=clock)
    stats = await relay.drain()
    # the stale one is never sent; the short one fails once and its retry would be too late
    assert [m.id for m in gw.calls] == [short]
    assert stats.expired == 2
    assert (await row(clean_pool, stale))["status"] == "expired"
    assert (await row(clean_pool, short))["status"] == "expired"


async def test_a_gateway_exception_is_a_failed_attempt(clean_pool) -> None:  # type: ignore[no-untyped-def]
    (oid,) = await add_rows(clean_pool)

    class Broken(Fake):
        async def send(self, msg: Message) -> Result:
            self.calls.append(msg)
            raise RuntimeError("boom")

    relay = Relay(clean_pool, {"sms": Broken()}, cfg(), clock=Clock())
    assert (await relay.run_once()).retried == 1
    r = await row(clean_pool, oid)
    assert (r["status"], r["last_error"]) == ("pending", "exception: RuntimeError")


async def test_the_per_gateway_rate_limit_spaces_sends(clean_pool) -> None:  # type: ignore[no-untyped-def]
    await add_rows(clean_pool, 11)
    gw = Fake()
    relay = Relay(clean_pool, {"sms": gw}, cfg(rate_per_s=50.0), clock=Clock())
    started = time.monotonic()
    assert (await relay.drain()).sent == 11
    assert time.monotonic() - started >= 10 / 50.0 - 0.01  # 11 sends: 10 gaps of 20 ms


async def test_two_relays_never_send_a_row_twice(clean_pool, database_url) -> None:  # type: ignore[no-untyped-def]
    ids = await add_rows(clean_pool, 300)
    pool_b = await create_pool(database_url, 1, 4)
    try:
        gw_a, gw_b = Fake(delay_s=0.001), Fake(delay_s=0.001)
        a = Relay(clean_pool, {"sms": gw_a}, cfg(batch_size=20), clock=Clock())
        b = Relay(pool_b, {"sms": gw_b}, cfg(batch_size=20), clock=Clock())
        sa, sb = await asyncio.gather(a.drain(), b.drain())
    finally:
        await pool_b.close()
    sent = Counter(m.id for m in gw_a.calls + gw_b.calls)
    assert sorted(sent) == ids
    assert set(sent.values()) == {1}
    assert sa.sent + sb.sent == 300 and sa.sent > 0 and sb.sent > 0
    assert await clean_pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'") == 300


async def test_a_crash_between_send_and_commit_resends_with_the_same_key(clean_pool) -> None:  # type: ignore[no-untyped-def]
    (oid,) = await add_rows(clean_pool)
    clock = Clock()

    called = asyncio.Event()

    class Hangs(Fake):
        async def send(self, msg: Message) -> Result:
            self.calls.append(msg)  # the provider got it...
            called.set()
            await asyncio.Event().wait()  # ...and the relay dies before recording
            raise AssertionError

    first = Hangs()
    a = Relay(clean_pool, {"sms": first}, cfg(lease_s=60.0), clock=clock)
    task = asyncio.create_task(a.run_once())
    await asyncio.wait_for(called.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await row(clean_pool, oid))["status"] == "sending"
    second = Fake(Result.sent("SM2"))
    b = Relay(clean_pool, {"sms": second}, cfg(lease_s=60.0), clock=clock)
    assert (await b.run_once()).claimed == 0  # the lease still holds
    clock.t += 61
    assert (await b.run_once()).sent == 1
    assert second.calls[0].idempotency_key == first.calls[0].idempotency_key
    r = await row(clean_pool, oid)
    assert (r["status"], r["attempts"]) == ("sent", 2)


async def test_outbox_api_lists_and_redrives_dead_letters(client, services) -> None:  # type: ignore[no-untyped-def]
    pool = services.pool
    dead, ok = await add_rows(pool, 2)
    relay = Relay(pool, {"sms": Fake(Result.dead("http_400", 400))}, cfg(), clock=Clock())
    await pool.execute("UPDATE outbox SET send_after = $2 WHERE id = $1", ok, dt(T0 + 999))
    await relay.drain()
    r = await client.get("/v1/outbox", params={"status": "dead"})
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["messages"]] == [dead]
    assert r.json()["messages"][0]["last_error"] == "http_400"
    assert (await client.post(f"/v1/outbox/{ok}/retry")).status_code == 409
    assert (await client.post("/v1/outbox/999999/retry")).status_code == 404
    r = await client.post(f"/v1/outbox/{dead}/retry")
    assert r.status_code == 200 and r.json() == {"id": dead, "status": "pending"}
    again = Fake(Result.sent("SM9"))
    relay2 = Relay(pool, {"sms": again}, cfg(), clock=Clock())
    assert (await relay2.drain()).sent == 1
    assert (await row(pool, dead))["status"] == "sent"
    assert (await client.get("/v1/outbox", params={"status": "bogus"})).status_code == 422
    anon = await client.get("/v1/outbox", headers={"Authorization": ""})
    assert anon.status_code == 401


# --- FCM HTTP v1 app push ----------------------------------------------------------------


def fcm_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    detail = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    body = {"error": {"code": status, "status": code, "details": [detail]}}
    return httpx.Response(status, json=body, headers=headers)


def fcm_relay(services, answers: list[httpx.Response], seen: list[httpx.Request], clock: Clock):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    directory = DeliveryDirectory(services.pool, services.profiles)

    async def bearer() -> str:
        return "ya29.test-token"

    gw = FcmGateway(
        project_id="demo-project",
        token_source=bearer,
        tokens_of=directory.push_tokens_of,
        remove_token=directory.remove_push_token,
        base_url="https://fcm.test",
        transport=httpx.MockTransport(handler),
        clock=clock,
    )
    c = cfg(max_attempts=3, backoff_base_s=10.0, jitter=0.0)
    return Relay(services.pool, {"push": gw}, c, clock=clock)


async def add_tokens(pool: asyncpg.Pool, *tokens: str) -> None:
    for i, t in enumerate(tokens):  # the first is the newest
        await pool.execute(
            "INSERT INTO push_tokens (token, customer_id, created_at) VALUES ($1, 'alice', $2)",
            t,
            dt(T0 - i),
        )


async def test_fcm_sends_the_v1_shape_and_drops_unregistered_tokens(services) -> None:  # type: ignore[no-untyped-def]
    await add_tokens(services.pool, "tok-new", "tok-old")
    (oid,) = await add_rows(services.pool, channel="push")
    seen: list[httpx.Request] = []
    ok = httpx.Response(200, json={"name": "projects/demo-project/messages/0:1"})
    relay = fcm_relay(services, [fcm_error(404, "UNREGISTERED"), ok], seen, Clock())
    assert (await relay.run_once()).sent == 1
    assert len(seen) == 2
    assert seen[0].url.path == "/v1/projects/demo-project/messages:send"
    assert seen[0].headers["Authorization"] == "Bearer ya29.test-token"
    bodies = [json.loads(r.content)["message"] for r in seen]
    assert [b["token"] for b in bodies] == ["tok-new", "tok-old"]
    assert bodies[1]["notification"] == {"title": "t", "body": "b"}
    assert bodies[1]["data"]["outbox_id"] == str(oid)
    left = await services.pool.fetch("SELECT token FROM push_tokens")
    assert [r["token"] for r in left] == ["tok-old"]
    r = await row(services.pool, oid)
    assert (r["status"], r["provider_id"]) == ("sent", "projects/demo-project/messages/0:1")
    await relay.aclose()


async def test_fcm_400_is_dead_and_quota_waits_a_minute(services) -> None:  # type: ignore[no-untyped-def]
    await add_tokens(services.pool, "tok")
    bad, quota = await add_rows(services.pool, 2, channel="push")
    seen: list[httpx.Request] = []
    clock = Clock()
    answers = [fcm_error(400, "INVALID_ARGUMENT"), fcm_error(429, "QUOTA_EXCEEDED")]
    relay = fcm_relay(services, answers, seen, clock)
    relay.cfg = cfg(batch_size=1, max_attempts=3, backoff_base_s=10.0, jitter=0.0)
    await relay.run_once()
    await relay.run_once()
    assert (await row(services.pool, bad))["last_error"] == "http_400_INVALID_ARGUMENT"
    r = await row(services.pool, quota)
    assert r["status"] == "pending"
    assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 60.0, abs=1e-3)
    await relay.aclose()


async def test_fcm_5xx_retries_exactly_max_attempts_then_no_token_is_dead(services) -> None:  # type: ignore[no-untyped-def]
    await add_tokens(services.pool, "tok")
    (oid,) = await add_rows(services.pool, channel="push")
    seen: list[httpx.Request] = []
    clock = Clock()
    relay = fcm_relay(services, [httpx.Response(503, text="<html>")], seen, clock)
    for _ in range(3):
        await relay.run_once()
        clock.t += 100
    assert len(seen) == 3
    assert (await row(services.pool, oid))["status"] == "dead"
    await services.pool.execute("DELETE FROM push_tokens")
    (none,) = await add_rows(services.pool, channel="push")
    await relay.run_once()
    assert len(seen) == 3
    assert (await row(services.pool, none))["last_error"] == "no_push_token"
    await relay.aclose()
