"""The APNs gateway through the relay on a real PostgreSQL, against the loopback fake the way
production talks to Apple: `https://`, HTTP/2 chosen by ALPN in the TLS handshake (no prior
knowledge), the server certificate verified (against the fake's self-signed one instead of the
public roots). The gateway's own httpx client is used, so a lost `http2=True` or TLS setting
fails here. Every answer Apple gives (410 drops the token, 400/413 dead letters, 429/5xx retry,
garbage) and the provider JWT (checked with the public key, renewed) go over that wire."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.apns import ApnsGateway, ProviderToken, apns_id
from adapters.delivery.relay import Relay
from tests.fakes.apns import FakeApns, Scripted, write_self_signed
from tests.integration.test_push_gateways import (
    APNS_TOKEN,
    KID,
    TEAM,
    TOPIC,
    add_token,
    apns_gateway,
    push_rows,
)
from tests.integration.test_relay import T0, Clock, add_rows, cfg, row


async def idempotency_key(pool: asyncpg.Pool, oid: int) -> str:
    key: str = await pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", oid)
    return key


async def test_apns_over_tls_negotiates_h2_by_alpn_drops_a_410_token_and_sends(
    clean_pool: asyncpg.Pool,
) -> None:
    gone, live = "cd" * 32, APNS_TOKEN
    await add_token(clean_pool, live, "apns", age_s=60)
    await add_token(clean_pool, gone, "apns")  # the newest, but the app was deleted
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        assert apple.url.startswith("https://127.0.0.1:")
        apple.unregistered.add(gone)
        relay = Relay(clean_pool, {"push": apns_gateway(apple, clean_pool)}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).sent == 1
        assert [p.token for p in apple.received] == [gone, live]
        (push,) = apple.delivered
        key = await idempotency_key(clean_pool, oid)
        assert push.headers["apns-id"] == apns_id(key)
        assert json.loads(push.body)["message_id"] == str(oid)
        r = await row(clean_pool, oid)
        assert (r["status"], r["provider_id"]) == ("sent", apns_id(key))
        left = await clean_pool.fetch("SELECT token FROM push_tokens")
        assert [t["token"] for t in left] == [live]
        # a 429 from Apple over the same connection: retried later
        apple.script.append(Scripted(429, "TooManyRequests"))
        (nxt,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        assert (await row(clean_pool, nxt))["last_error"] == "http_429_TooManyRequests"
        # one TLS connection for all three requests, and it negotiated h2 through ALPN
        assert apple.alpn == ["h2"]
        assert {p.alpn for p in apple.received} == {"h2"}
        await relay.aclose()


def other_ca(tmp_path: Path) -> ssl.SSLContext:
    """Trusts a certificate for the same names, but not the fake's: as an impostor would be."""
    cert, _ = write_self_signed(tmp_path)
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("trust", ["public roots", "another self-signed"])
async def test_apns_certificate_not_trusted_is_a_retryable_transport_error(
    clean_pool: asyncpg.Pool, tmp_path: Path, trust: str
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        d = DeliveryDirectory(clean_pool, None)
        gw = ApnsGateway(
            provider_token=ProviderToken(apple.private_pem, KID, TEAM),
            topic=TOPIC,
            tokens_of=d.apns_tokens_of,
            remove_token=d.remove_push_token,
            base_url=apple.url,
            timeout_s=2.0,
            # True: the production default (certifi), which cannot know a loopback certificate
            verify=True if trust == "public roots" else other_ca(tmp_path),
        )
        relay = Relay(clean_pool, {"push": gw}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        stats = await relay.run_once()
        assert (stats.sent, stats.retried) == (0, 1)
        r = await row(clean_pool, oid)
        assert (r["status"], r["last_error"]) == ("pending", "transport: ConnectError")
        assert (r["provider_id"], r["sent_at"]) == (None, None)
        # the handshake failed before any HTTP: nothing reached Apple, the token is kept
        assert (apple.alpn, apple.received) == ([], [])
        assert await clean_pool.fetchval("SELECT count(*) FROM push_tokens") == 1
        await relay.aclose()


async def test_apns_default_trust_store_honours_ssl_cert_file(
    clean_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox or TLS-inspecting proxy needs no setting of ours: `verify=True` (production)
    takes its CA bundle from SSL_CERT_FILE, as httpx reads it when the client is built."""
    await add_token(clean_pool, APNS_TOKEN, "apns")
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        monkeypatch.setenv("SSL_CERT_FILE", str(apple.ca_file))
        d = DeliveryDirectory(clean_pool, None)
        gw = ApnsGateway(
            provider_token=ProviderToken(apple.private_pem, KID, TEAM),
            topic=TOPIC,
            tokens_of=d.apns_tokens_of,
            remove_token=d.remove_push_token,
            base_url=apple.url,
            timeout_s=2.0,
        )
        relay = Relay(clean_pool, {"push": gw}, cfg())
        await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).sent == 1
        assert apple.alpn == ["h2"]
        await relay.aclose()


async def test_apns_wire_format_jwt_and_the_same_apns_id_on_a_resend(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    clock = Clock()
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        apple.script.append(Scripted(503, "ServiceUnavailable", {"retry-after": "20"}))
        gw = apns_gateway(apple, clean_pool, clock)
        relay = Relay(clean_pool, {"push": gw}, cfg(backoff_base_s=10.0, jitter=0.0), clock=clock)
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).retried == 1
        r = await row(clean_pool, oid)
        assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 20.0, abs=1e-3)
        clock.t += 20
        assert (await relay.run_once()).sent == 1
        first, second = apple.received
        assert first.headers[":path"] == f"/3/device/{APNS_TOKEN}"
        key = await idempotency_key(clean_pool, oid)
        for push in (first, second):
            h = push.headers
            assert h["apns-id"] == h["apns-collapse-id"] == apns_id(key)
            assert (h["apns-topic"], h["apns-push-type"], h["apns-priority"]) == (
                TOPIC,
                "alert",
                "10",
            )
            assert h["apns-expiration"] == str(int(T0 + 3600))
        body = json.loads(second.body)
        assert body["aps"]["alert"] == {"title": "t", "body": "b"}
        assert body["message_id"] == str(oid)
        token = second.headers["authorization"].removeprefix("bearer ")
        assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KID, "typ": "JWT"}
        claims = jwt.decode(token, apple.public_key, algorithms=["ES256"])
        assert claims == {"iss": TEAM, "iat": int(T0)}
        assert first.headers["authorization"] == second.headers["authorization"]  # cached
        r = await row(clean_pool, oid)
        assert (r["status"], r["provider_id"]) == ("sent", apns_id(key))
        await relay.aclose()


async def test_apns_provider_jwt_renewed_after_50_min_and_on_expired_provider_token(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    # 52 min behind real time: every iat the 51 minutes below sign is in the past, as the fake
    # (PyJWT, like Apple) refuses a token issued in the future
    clock = Clock(T0 - 52 * 60)
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        gw = apns_gateway(apple, clean_pool, clock)
        relay = Relay(clean_pool, {"push": gw}, cfg(), clock=clock)
        await push_rows(clean_pool, 1, clock)
        await relay.run_once()
        clock.t += 49 * 60
        await push_rows(clean_pool, 1, clock)
        await relay.run_once()
        assert gw.provider_token.issued == 1  # 49 min: still the same one
        clock.t += 2 * 60
        apple.script.append(Scripted(403, "ExpiredProviderToken"))
        await push_rows(clean_pool, 1, clock)
        assert (await relay.run_once()).sent == 1  # 403 ExpiredProviderToken, renewed: sent
        assert gw.provider_token.issued == 3  # at 51 min, then once more after the 403
        auths = [p.headers["authorization"] for p in apple.received]
        assert auths[0] == auths[1] != auths[2] != auths[3]
        assert len(apple.delivered) == 3
        await relay.aclose()


async def test_apns_refuses_a_provider_jwt_signed_with_another_key(
    clean_pool: asyncpg.Pool,
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        gw = apns_gateway(apple, clean_pool)
        stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        gw.provider_token = ProviderToken(stranger.decode(), KID, TEAM)
        relay = Relay(clean_pool, {"push": gw}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        r = await row(clean_pool, oid)
        assert (r["status"], r["last_error"]) == ("dead", "http_403_InvalidProviderToken")
        assert apple.delivered == []
        await relay.aclose()


@pytest.mark.parametrize(
    ("answer", "status", "error", "token_left"),
    [
        (Scripted(410, "Unregistered"), "dead", "no_push_token", False),
        (Scripted(400, "BadDeviceToken"), "dead", "no_push_token", False),
        (
            Scripted(400, "DeviceTokenNotForTopic"),
            "dead",
            "http_400_DeviceTokenNotForTopic",
            True,
        ),
        (Scripted(413, "PayloadTooLarge"), "dead", "http_413_PayloadTooLarge", True),
        (Scripted(429, "TooManyRequests"), "pending", "http_429_TooManyRequests", True),
        (Scripted(500, "InternalServerError"), "pending", "http_500_InternalServerError", True),
        (Scripted(400, raw=b"<html>garbage"), "pending", "garbage_response", True),
    ],
)
async def test_apns_answers(
    clean_pool: asyncpg.Pool, answer: Scripted, status: str, error: str, token_left: bool
) -> None:
    await add_token(clean_pool, APNS_TOKEN, "apns")
    async with FakeApns(TEAM, KID, TOPIC) as apple:
        apple.script.append(answer)
        relay = Relay(clean_pool, {"push": apns_gateway(apple, clean_pool)}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        r = await row(clean_pool, oid)
        assert (r["status"], r["last_error"]) == (status, error)
        left = await clean_pool.fetchval("SELECT count(*) FROM push_tokens")
        assert left == (1 if token_left else 0)
        assert (len(apple.received), apple.delivered, apple.alpn) == (1, [], ["h2"])
        await relay.aclose()
