"""The Twilio-compatible SMS gateway through the relay, against httpx.MockTransport answering as
Twilio does: 201 with a sid, 21610 / 21211 / 21614, 429 with Retry-After, 5xx, garbage, resets
and timeouts; exact attempt counts against the configured schedule."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import pseudonym
from adapters.delivery.gateways.log_sink import LogSink
from adapters.delivery.gateways.twilio import TwilioGateway, e164
from adapters.delivery.relay import Relay
from geo_engine.delivery.config import RelayConfig
from tests.integration.test_relay import Clock, add_rows, row

SID = "AC0123456789abcdef0123456789abcdef"
PHONE = "+33612345678"
Handler = Callable[[httpx.Request], httpx.Response]


def twilio_error(status: int, code: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"code": code, "message": "error", "status": status}
    return httpx.Response(status, json=body, headers=headers)


def created(sid: str = "SM" + "a" * 32) -> httpx.Response:
    return httpx.Response(201, json={"sid": sid, "status": "queued"})


class Provider:
    """Answers from a script (the last one repeats) and records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        a = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(a, Exception):
            raise a
        return a


def build(services, provider: Provider, clock: Clock, **cfg: object) -> Relay:  # type: ignore[no-untyped-def]
    directory = DeliveryDirectory(services.pool, services.profiles)
    gw = TwilioGateway(
        account_sid=SID,
        auth_token="secret-token",
        phone_of=directory.phone_of,
        on_opt_out=directory.revoke_sms,
        on_invalid_number=directory.mark_phone_invalid,
        base_url="https://twilio.test",
        from_number="+33700000000",
        status_callback="https://engine.test/v1/callbacks/twilio/status",
        transport=httpx.MockTransport(provider),
        clock=clock,
    )
    base: dict[str, object] = {"max_attempts": 3, "backoff_base_s": 10.0, "jitter": 0.0}
    base.update(cfg)
    return Relay(services.pool, {"sms": gw}, RelayConfig(**base), clock=clock)  # type: ignore[arg-type]


async def link_phone(services, phone: str = PHONE, customer: str = "alice") -> None:  # type: ignore[no-untyped-def]
    await services.pool.execute(
        "INSERT INTO identities (type, value, customer_id) VALUES ('phone', $1, $2)",
        phone,
        customer,
    )


async def run_until_done(relay: Relay, clock: Clock, rounds: int = 20) -> None:
    for _ in range(rounds):
        await relay.run_once()
        nxt = await relay.pool.fetchval(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
        )
        if nxt is None:
            return
        clock.t = max(clock.t, nxt.timestamp())


async def test_201_is_sent_with_the_sid_and_the_wire_format(services) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services, "+33 6 12 34 56 78")
    (oid,) = await add_rows(services.pool)
    provider = Provider(created("SMxyz"))
    clock = Clock()
    relay = build(services, provider, clock)
    assert (await relay.run_once()).sent == 1
    (req,) = provider.requests
    assert req.method == "POST"
    assert req.url.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    auth = base64.b64decode(req.headers["Authorization"].removeprefix("Basic ")).decode()
    assert auth == f"{SID}:secret-token"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(req.content.decode()).items()}
    assert form["To"] == PHONE
    assert form["Body"] == "Bonjour, -10% chez nous"
    assert form["From"] == "+33700000000"
    assert form["StatusCallback"] == "https://engine.test/v1/callbacks/twilio/status"
    assert 3500 <= int(form["ValidityPeriod"]) <= 3600
    r = await row(services.pool, oid)
    assert (r["status"], r["provider_id"], r["attempts"]) == ("sent", "SMxyz", 1)
    await relay.aclose()


async def test_21610_revokes_the_sms_consent_and_dead_letters(services) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services)
    (oid,) = await add_rows(services.pool)
    provider = Provider(twilio_error(400, 21610))
    relay = build(services, provider, Clock())
    await run_until_done(relay, relay.clock)  # type: ignore[arg-type]
    assert len(provider.requests) == 1
    r = await row(services.pool, oid)
    assert (r["status"], r["last_error"]) == ("dead", "opted_out_21610")
    status = await services.pool.fetchval(
        "SELECT status FROM customer_consents WHERE customer_id = 'alice' AND purpose = 'sms'"
    )
    assert status == "revoked"
    mem = services.profiles.state.consents["alice"]
    assert str(mem[next(p for p in mem if str(p) == "sms")].status) == "revoked"
    await relay.aclose()


@pytest.mark.parametrize("code", [21211, 21614])
async def test_invalid_number_is_marked_and_dead_letters(services, code: int) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services)
    (oid,) = await add_rows(services.pool)
    provider = Provider(twilio_error(400, code))
    clock = Clock()
    relay = build(services, provider, clock)
    await run_until_done(relay, clock)
    assert len(provider.requests) == 1
    assert (await row(services.pool, oid))["status"] == "dead"
    reason = await services.pool.fetchval(
        "SELECT invalid_reason FROM identities WHERE type = 'phone' AND value = $1", PHONE
    )
    assert reason == f"twilio_{code}"
    # the next offer finds no usable number: nothing sent
    (nxt,) = await add_rows(services.pool)
    await run_until_done(relay, clock)
    assert len(provider.requests) == 1
    assert (await row(services.pool, nxt))["last_error"] == "no_phone"
    await relay.aclose()


async def test_a_number_that_is_not_e164_is_never_sent(services) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services, "+3312")
    (oid,) = await add_rows(services.pool)
    provider = Provider(created())
    clock = Clock()
    relay = build(services, provider, clock)
    await run_until_done(relay, clock)
    assert provider.requests == []
    assert (await row(services.pool, oid))["last_error"] == "invalid_number"
    assert e164("+33 6 12 34 56 78") == PHONE and e164("06 12 34 56 78") is None
    await relay.aclose()


async def test_429_honours_retry_after_then_sends(services) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services)
    (oid,) = await add_rows(services.pool)
    provider = Provider(twilio_error(429, 20429, {"Retry-After": "45"}), created("SMok"))
    clock = Clock()
    relay = build(services, provider, clock, backoff_base_s=1.0)
    await relay.run_once()
    r = await row(services.pool, oid)
    assert r["status"] == "pending"
    assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 45, abs=1e-3)
    await run_until_done(relay, clock)
    assert len(provider.requests) == 2
    r = await row(services.pool, oid)
    assert (r["status"], r["attempts"], r["provider_id"]) == ("sent", 2, "SMok")
    await relay.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503, text="Service Unavailable"),
        httpx.Response(400, json={"code": 20429, "message": "Too Many Requests"}),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(201, json={"no": "sid"}),
        httpx.Response(201, json=["garbage"]),
        httpx.ConnectError("connection reset by peer"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=["503", "20429", "html", "no-sid", "list", "reset", "timeout"],
)
async def test_retryable_answers_use_exactly_the_configured_attempts(  # type: ignore[no-untyped-def]
    services, answer: httpx.Response | Exception
) -> None:
    await link_phone(services)
    (oid,) = await add_rows(services.pool)
    provider = Provider(answer)
    clock = Clock()
    relay = build(services, provider, clock, max_attempts=3, backoff_base_s=10.0)
    start = clock.t
    await run_until_done(relay, clock)
    assert len(provider.requests) == 3
    r = await row(services.pool, oid)
    assert (r["status"], r["attempts"]) == ("dead", 3)
    assert clock.t - start == pytest.approx(10.0 + 20.0, abs=1e-3)  # the schedule, no jitter
    await relay.aclose()


async def test_other_4xx_is_dead_at_once(services) -> None:  # type: ignore[no-untyped-def]
    await link_phone(services)
    (oid,) = await add_rows(services.pool)
    provider = Provider(twilio_error(401, 20003))
    clock = Clock()
    relay = build(services, provider, clock)
    await run_until_done(relay, clock)
    assert len(provider.requests) == 1
    assert (await row(services.pool, oid))["last_error"] == "http_401_20003"
    await relay.aclose()


async def test_log_sink_pseudonymises_and_never_logs_the_phone(  # type: ignore[no-untyped-def]
    services, caplog: pytest.LogCaptureFixture
) -> None:
    await link_phone(services)
    await add_rows(services.pool, customer="alice")
    relay = Relay(services.pool, {"sms": LogSink()}, RelayConfig(), clock=Clock())
    with caplog.at_level(logging.INFO):
        assert (await relay.drain()).sent == 1
    text = caplog.text
    assert pseudonym("alice") in text and "Bonjour" in text
    assert "alice" not in text and PHONE not in text
