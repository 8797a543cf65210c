"""App push through the relay on a real PostgreSQL: FCM HTTP v1 with the service-account JWT
exchange against a loopback fake of Google's token endpoint and FCM (real sockets); APNs over
httpx.MockTransport (every answer, the JWT checked against the public key) and over real HTTP/2
against a loopback h2c fake; the native router picking the provider of the newest token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.composition import build_gateways
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.apns import ApnsGateway, ProviderToken, apns_id
from adapters.delivery.gateways.fcm import FcmGateway
from adapters.delivery.gateways.fcm_auth import ServiceAccountTokenSource
from adapters.delivery.gateways.push import PushRouter
from adapters.delivery.relay import Relay
from tests.fakes.apns import FakeApns
from tests.fakes.fcm import FakeFcm
from tests.fakes.http import Reply
from tests.integration.test_relay import T0, Clock, add_rows, cfg, dt, row

APNS_TOKEN = "ab" * 32
TEAM, KID, TOPIC = "TEAM123456", "KEY1234567", "com.example.shop"


async def add_token(pool: asyncpg.Pool, token: str, provider: str, age_s: float = 0.0) -> None:
    await pool.execute(
        "INSERT INTO push_tokens (token, customer_id, provider, created_at)"
        " VALUES ($1, 'alice', $2, $3)",
        token,
        provider,
        dt(T0 - age_s),
    )


async def push_rows(pool: asyncpg.Pool, n: int, clock: Clock) -> list[int]:
    return await add_rows(
        pool, n, channel="push", send_after=clock.t - 1, expires_at=clock.t + 7200
    )


def fcm_gateway(fake: FakeFcm, pool: asyncpg.Pool, clock: Clock) -> FcmGateway:
    d = DeliveryDirectory(pool, None)
    source = ServiceAccountTokenSource(fake.service_account(), clock=clock)
    return FcmGateway(
        project_id=fake.project_id,
        token_source=source,
        tokens_of=d.push_tokens_of,
        remove_token=d.remove_push_token,
        invalidate_token=source.invalidate,
        close_token_source=source.aclose,
        base_url=fake.url,
        timeout_s=2.0,
        clock=clock,
    )


async def test_fcm_service_account_exchange_caches_refreshes_and_retries_a_401(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, "fcm-tok", "fcm")
    # the clock runs behind real time so the assertion's iat is never in the fake's future
    clock = Clock(T0 - 1000)
    async with FakeFcm(ttl_s=600) as fake:
        fake.registered.add("fcm-tok")
        gw = fcm_gateway(fake, clean_pool, clock)
        relay = Relay(clean_pool, {"push": gw}, cfg(), clock=clock)
        a, b = await push_rows(clean_pool, 2, clock)
        assert (await relay.run_once()).sent == 2
        assert len(fake.issued) == 1  # one exchange for both sends: cached
        (claims,) = fake.assertions
        assert claims["iss"] == fake.service_account()["client_email"]
        assert [m["data"]["message_id"] for m in fake.messages] == [str(a), str(b)]
        # valid 10 minutes: reused for 5, then replaced before use
        clock.t += 299
        await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert len(fake.issued) == 1
        clock.t += 2
        await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert len(fake.issued) == 2
        # revoked on Google's side: FCM answers 401, the relay exchanges again and resends once
        fake.revoked.add(fake.issued[-1])
        (c,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert len(fake.issued) == 3
        assert (await row(clean_pool, c))["attempts"] == 1
        await relay.aclose()


async def test_fcm_token_endpoint_refusal_is_a_retry_not_a_crash(clean_pool: asyncpg.Pool) -> None:
    await add_token(clean_pool, "fcm-tok", "fcm")
    clock = Clock(T0 - 1000)
    async with FakeFcm() as fake:
        fake.registered.add("fcm-tok")
        fake.token_script.answers = [Reply.of_json(400, {"error": "invalid_grant"})]
        relay = Relay(
            clean_pool, {"push": fcm_gateway(fake, clean_pool, clock)}, cfg(), clock=clock
        )
        (oid,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).retried == 1
        r = await row(clean_pool, oid)
        assert (r["status"], r["last_error"]) == (
            "pending",
            "token endpoint: http 400 invalid_grant",
        )
        assert fake.messages == []
        await relay.aclose()


class Apple:
    """APNs answers from a script (the last repeats); records the requests."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[min(len(self.requests), len(self.answers)) - 1]


def apns_error(status: int, reason: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"reason": reason}, headers=headers)


def ok(ident: str = "x") -> httpx.Response:
    return httpx.Response(200, headers={"apns-id": ident})


def apns_gateway(
    pool: asyncpg.Pool, apple: Callable[[httpx.Request], httpx.Response], clock: Clock
) -> tuple[ApnsGateway, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    d = DeliveryDirectory(pool, None)
    gw = ApnsGateway(
        provider_token=ProviderToken(pem, KID, TEAM, clock),
        topic=TOPIC,
        tokens_of=d.apns_tokens_of,
        remove_token=d.remove_push_token,
        base_url="https://api.push.apple.test",
        transport=httpx.MockTransport(apple),
        clock=clock,
    )
    return gw, key.public_key()


async def test_apns_wire_format_jwt_and_the_same_apns_id_on_a_resend(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    apple = Apple(apns_error(503, "ServiceUnavailable", {"Retry-After": "20"}), ok("A-1"))
    clock = Clock()
    gw, public = apns_gateway(clean_pool, apple, clock)
    relay = Relay(clean_pool, {"push": gw}, cfg(backoff_base_s=10.0, jitter=0.0), clock=clock)
    (oid,) = await add_rows(clean_pool, 1, channel="push")
    assert (await relay.run_once()).retried == 1
    r = await row(clean_pool, oid)
    assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 20.0, abs=1e-3)
    clock.t += 20
    assert (await relay.run_once()).sent == 1
    first, second = apple.requests
    assert first.url.path == f"/3/device/{APNS_TOKEN}"
    key = await clean_pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", oid)
    expected_id = str(uuid.uuid5(uuid.UUID("6f1c3c2e-2b0a-5d8e-9a51-0c9d1f4e7a10"), key))
    for req in (first, second):
        assert req.headers["apns-id"] == req.headers["apns-collapse-id"] == expected_id
        assert req.headers["apns-topic"] == TOPIC
        assert req.headers["apns-push-type"] == "alert"
        assert req.headers["apns-priority"] == "10"
        assert req.headers["apns-expiration"] == str(int(T0 + 3600))
    body = json.loads(second.content)
    assert body["aps"]["alert"] == {"title": "t", "body": "b"}
    assert body["message_id"] == str(oid)
    token = second.headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KID, "typ": "JWT"}
    claims = jwt.decode(token, public, algorithms=["ES256"])
    assert claims == {"iss": TEAM, "iat": int(T0)}
    assert first.headers["authorization"] == second.headers["authorization"]  # cached
    r = await row(clean_pool, oid)
    assert (r["status"], r["provider_id"]) == ("sent", "A-1")
    assert apns_id(key) == expected_id
    await relay.aclose()


async def test_apns_provider_jwt_renewed_after_50_min_and_on_expired_provider_token(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    apple = Apple(ok(), ok(), apns_error(403, "ExpiredProviderToken"), ok())
    clock = Clock()
    gw, _ = apns_gateway(clean_pool, apple, clock)
    relay = Relay(clean_pool, {"push": gw}, cfg(), clock=clock)
    await add_rows(clean_pool, 1, channel="push")
    await relay.run_once()
    clock.t += 49 * 60
    await add_rows(clean_pool, 1, channel="push", expires_at=clock.t + 3600)
    await relay.run_once()
    assert gw.provider_token.issued == 1  # 49 min: still the same one
    clock.t += 2 * 60
    await add_rows(clean_pool, 1, channel="push", expires_at=clock.t + 3600)
    assert (await relay.run_once()).sent == 1  # 403 ExpiredProviderToken, then renewed: sent
    assert gw.provider_token.issued == 3  # at 51 min, then once more after the 403
    auths = [r.headers["authorization"] for r in apple.requests]
    assert auths[0] == auths[1] != auths[2] != auths[3]
    await relay.aclose()


@pytest.mark.parametrize(
    ("answer", "status", "error", "token_left"),
    [
        (apns_error(410, "Unregistered"), "dead", "no_push_token", False),
        (apns_error(400, "BadDeviceToken"), "dead", "no_push_token", False),
        (
            apns_error(400, "DeviceTokenNotForTopic"),
            "dead",
            "http_400_DeviceTokenNotForTopic",
            True,
        ),
        (apns_error(413, "PayloadTooLarge"), "dead", "http_413_PayloadTooLarge", True),
        (apns_error(429, "TooManyRequests"), "pending", "http_429_TooManyRequests", True),
        (apns_error(500, "InternalServerError"), "pending", "http_500_InternalServerError", True),
        (httpx.Response(400, text="<html>garbage"), "pending", "garbage_response", True),
    ],
)
async def test_apns_answers(
    clean_pool: asyncpg.Pool, answer: httpx.Response, status: str, error: str, token_left: bool
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    apple = Apple(answer)
    clock = Clock()
    gw, _ = apns_gateway(clean_pool, apple, clock)
    relay = Relay(clean_pool, {"push": gw}, cfg(), clock=clock)
    (oid,) = await add_rows(clean_pool, 1, channel="push")
    await relay.run_once()
    r = await row(clean_pool, oid)
    assert (r["status"], r["last_error"]) == (status, error)
    left = await clean_pool.fetchval("SELECT count(*) FROM push_tokens")
    assert left == (1 if token_left else 0)
    assert len(apple.requests) == 1
    await relay.aclose()


async def test_native_router_uses_the_newest_device_and_falls_over_when_its_token_is_gone(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, "fcm-old", "fcm", age_s=600)
    await add_token(clean_pool, APNS_TOKEN, "apns", age_s=10)  # the iPhone is the newest
    clock = Clock(T0 - 1000)
    apple = Apple(ok("A-1"), apns_error(410, "Unregistered"))
    apns, _ = apns_gateway(clean_pool, apple, clock)
    async with FakeFcm() as fake:
        fake.registered.add("fcm-old")
        router = PushRouter(
            {"fcm": fcm_gateway(fake, clean_pool, clock), "apns": apns},
            DeliveryDirectory(clean_pool, None).push_providers_of,
        )
        relay = Relay(clean_pool, {"push": router}, cfg(), clock=clock)
        (a,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert (len(apple.requests), len(fake.messages)) == (1, 0)  # one notification only
        assert (await row(clean_pool, a))["provider_id"] == "A-1"
        # the app was deleted from the iPhone: APNs says 410, the Android phone gets it
        (b,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert len(apple.requests) == 2
        assert [m["data"]["message_id"] for m in fake.messages] == [str(b)]
        providers = await clean_pool.fetch("SELECT provider FROM push_tokens")
        assert [p["provider"] for p in providers] == ["fcm"]
        gateway = await clean_pool.fetchval(
            "SELECT gateway FROM delivery_attempts WHERE outbox_id = $1", b
        )
        assert gateway == "push"
        await relay.aclose()


async def test_native_router_without_tokens_is_a_dead_letter(clean_pool: asyncpg.Pool) -> None:
    router = PushRouter({}, DeliveryDirectory(clean_pool, None).push_providers_of)
    relay = Relay(clean_pool, {"push": router}, cfg())
    (oid,) = await add_rows(clean_pool, 1, channel="push")
    await relay.run_once()
    assert (await row(clean_pool, oid))["last_error"] == "no_push_token"
    await add_token(clean_pool, APNS_TOKEN, "apns")  # APNs tokens, APNs not configured
    (oid,) = await add_rows(clean_pool, 1, channel="push")
    await relay.run_once()
    assert (await row(clean_pool, oid))["last_error"] == "no_gateway_for_apns"


async def test_build_gateways_wires_native_push(settings_factory, clean_pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "apns.p8").write_bytes(pem)
    async with FakeFcm() as fake:
        (tmp_path / "sa.json").write_text(json.dumps(fake.service_account()))
        s = settings_factory(
            delivery_push_gateway="native",
            fcm_project_id=fake.project_id,
            fcm_service_account_file=tmp_path / "sa.json",
            apns_key_file=tmp_path / "apns.p8",
            apns_key_id=KID,
            apns_team_id=TEAM,
            apns_topic=TOPIC,
        )
        gws = build_gateways(s, DeliveryDirectory(clean_pool, None))
        push = gws["push"]
        assert isinstance(push, PushRouter)
        assert sorted(push.providers) == ["apns", "fcm"]
        fcm = push.providers["fcm"]
        assert isinstance(fcm, FcmGateway)
        assert isinstance(fcm.token_source, ServiceAccountTokenSource)
        await push.aclose()


async def test_apns_over_real_http2_on_loopback(clean_pool: asyncpg.Pool) -> None:
    gone, live = "cd" * 32, APNS_TOKEN
    await add_token(clean_pool, live, "apns", age_s=60)
    await add_token(clean_pool, gone, "apns")  # the newest, but the app was deleted
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        apple.unregistered.add(gone)
        d = DeliveryDirectory(clean_pool, None)
        gw = ApnsGateway(
            provider_token=ProviderToken(apple.private_pem, KID, TEAM),
            topic=TOPIC,
            tokens_of=d.apns_tokens_of,
            remove_token=d.remove_push_token,
            base_url=apple.url,
            # h2c with prior knowledge: Apple's is TLS + ALPN h2, the framing is the same
            transport=httpx.AsyncHTTPTransport(http1=False, http2=True),
        )
        relay = Relay(clean_pool, {"push": gw}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).sent == 1
        assert [p.token for p in apple.received] == [gone, live]
        (push,) = apple.delivered
        key = await clean_pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", oid)
        assert push.headers["apns-id"] == apns_id(key)
        assert json.loads(push.body)["message_id"] == str(oid)
        r = await row(clean_pool, oid)
        assert (r["status"], r["provider_id"]) == ("sent", apns_id(key))
        left = await clean_pool.fetch("SELECT token FROM push_tokens")
        assert [t["token"] for t in left] == [live]
        # a 429 from Apple over the same connection: retried later
        apple.script.append((429, "TooManyRequests"))
        (nxt,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        assert (await row(clean_pool, nxt))["last_error"] == "http_429_TooManyRequests"
        await relay.aclose()
