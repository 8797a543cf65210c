"""App push through the relay on a real PostgreSQL: FCM HTTP v1 with the service-account JWT
exchange against a loopback fake of Google's token endpoint and FCM (real sockets); the native
router picking the provider of the newest token (APNs: the TLS + ALPN h2 loopback fake; the
APNs gateway's own tests are in test_apns.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import asyncpg
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
        # one message each; the relay sends a claimed batch concurrently, so in either order
        assert sorted(m["data"]["message_id"] for m in fake.messages) == sorted([str(a), str(b)])
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


def apns_gateway(
    apple: FakeApns, pool: asyncpg.Pool, clock: Callable[[], float] = time.time
) -> ApnsGateway:
    """The production gateway, its own httpx client, to the fake over TLS: HTTP/2 by ALPN and
    the certificate verified against the fake's (the only difference from Apple's)."""
    d = DeliveryDirectory(pool, None)
    return ApnsGateway(
        provider_token=ProviderToken(apple.private_pem, KID, TEAM, clock),
        topic=TOPIC,
        tokens_of=d.apns_tokens_of,
        remove_token=d.remove_push_token,
        base_url=apple.url,
        timeout_s=2.0,
        verify=apple.client_ssl_context(),
        clock=clock,
    )


async def test_native_router_uses_the_newest_device_and_falls_over_when_its_token_is_gone(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, "fcm-old", "fcm", age_s=600)
    await add_token(clean_pool, APNS_TOKEN, "apns", age_s=10)  # the iPhone is the newest
    clock = Clock(T0 - 1000)
    async with FakeApns(TEAM, KID, TOPIC) as apple, FakeFcm() as fake:
        apns = apns_gateway(apple, clean_pool, clock)
        fake.registered.add("fcm-old")
        router = PushRouter(
            {"fcm": fcm_gateway(fake, clean_pool, clock), "apns": apns},
            DeliveryDirectory(clean_pool, None).push_providers_of,
        )
        relay = Relay(clean_pool, {"push": router}, cfg(), clock=clock)
        (a,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert (len(apple.received), len(fake.messages)) == (1, 0)  # one notification only
        key = await clean_pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", a)
        assert (await row(clean_pool, a))["provider_id"] == apns_id(key)
        # the app was deleted from the iPhone: APNs says 410, the Android phone gets it
        apple.unregistered.add(APNS_TOKEN)
        (b,) = await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1
        assert len(apple.received) == 2
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
