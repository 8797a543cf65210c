"""The Standard Webhooks gateway through the relay against a real loopback receiver that checks
the signature on its own: the wire format, the stable webhook-id across retries, 410 disabling
the endpoint (persisted), and retry / dead letter per answer, timeouts and resets included."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import asyncpg
import pytest

from adapters.composition import build_gateways
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.webhook import WebhookGateway, secret_key, sign, verify
from adapters.delivery.relay import Relay
from tests.fakes.http import Answer, Hang, Reply, Reset, Script
from tests.fakes.webhook import FakeReceiver
from tests.integration.test_relay import T0, Clock, add_rows, cfg, row

SECRET = "whsec_" + base64.b64encode(b"partner-shared-secret-32-bytes!!").decode()


def gateway(pool: asyncpg.Pool, url: str, secret: str = SECRET, **kw: object) -> WebhookGateway:
    d = DeliveryDirectory(pool, None)
    return WebhookGateway(
        url=url,
        secret=secret,
        is_disabled=d.webhook_disabled,
        disable=d.disable_webhook,
        **kw,  # type: ignore[arg-type]
    )


def test_signature_matches_the_specs_test_vector() -> None:
    # the reference libraries' vector (standard-webhooks, svix)
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    sig = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"webhook-id": "m", "webhook-timestamp": "1614265330", "webhook-signature": sig}
    assert not verify(key, headers, body)  # another id (and far too old anyway)


async def test_delivers_signed_offer_with_the_idempotency_key_as_webhook_id(
    clean_pool: asyncpg.Pool,
) -> None:
    async with FakeReceiver(SECRET) as rx:
        relay = Relay(clean_pool, {"push": gateway(clean_pool, rx.url + "/hooks/geo")}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).sent == 1
        (req,) = rx.requests
        assert rx.bad_signatures == 0
        assert req.path == "/hooks/geo"
        key = await clean_pool.fetchval("SELECT idempotency_key FROM outbox WHERE id = $1", oid)
        assert req.headers["webhook-id"] == key
        assert req.headers["content-type"] == "application/json"
        body = req.json()
        assert body["type"] == "offer"
        assert body["message_id"] == oid
        assert body["customer_id"] == "alice"
        assert (body["campaign_id"], body["channel"]) == ("c1", "push")
        assert body["payload"]["push"] == {"title": "t", "body": "b"}
        assert datetime.fromisoformat(body["expires_at"]).timestamp() == pytest.approx(T0 + 3600)
        assert (await row(clean_pool, oid))["status"] == "sent"
        await relay.aclose()


async def test_a_retry_carries_the_same_webhook_id_and_honours_retry_after(
    clean_pool: asyncpg.Pool,
) -> None:
    busy = Reply.of_json(503, {"error": "busy"}, {"Retry-After": "45"})
    async with FakeReceiver(SECRET, Script(busy, None)) as rx:
        clock = Clock()
        relay = Relay(
            clean_pool,
            {"sms": gateway(clean_pool, rx.url)},
            cfg(backoff_base_s=10.0, jitter=0.0),
            clock=clock,
        )
        (oid,) = await add_rows(clean_pool, 1)
        assert (await relay.run_once()).retried == 1
        r = await row(clean_pool, oid)
        assert r["next_attempt_at"].timestamp() == pytest.approx(clock.t + 45.0, abs=1e-3)
        clock.t += 45
        assert (await relay.run_once()).sent == 1
        first, second = rx.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert first.body == second.body
        assert rx.bad_signatures == 0
        assert list(rx.delivered) == [first.headers["webhook-id"]]
        attempts = await clean_pool.fetch(
            "SELECT attempt, outcome, http_status FROM delivery_attempts WHERE outbox_id = $1"
            " ORDER BY attempt",
            oid,
        )
        assert [tuple(a) for a in attempts] == [(1, "retry", 503), (2, "sent", 204)]
        await relay.aclose()


async def test_410_disables_the_endpoint_for_good(clean_pool: asyncpg.Pool) -> None:
    async with FakeReceiver(SECRET, Script(Reply(410))) as rx:
        relay = Relay(clean_pool, {"push": gateway(clean_pool, rx.url)}, cfg())
        first, second = await add_rows(clean_pool, 2, channel="push")
        cfg_one = cfg(batch_size=1)
        relay.cfg = cfg_one
        await relay.run_once()
        await relay.run_once()
        assert len(rx.requests) == 1  # the second was never sent
        for oid in (first, second):
            r = await row(clean_pool, oid)
            assert (r["status"], r["last_error"]) == ("dead", "endpoint_disabled")
        disabled = await clean_pool.fetchrow("SELECT * FROM webhook_endpoints")
        assert disabled["url"] == rx.url
        assert disabled["disabled_reason"] == "http_410"
        await relay.aclose()
        # persisted: a relay started later does not call either
        relay = Relay(clean_pool, {"push": gateway(clean_pool, rx.url)}, cfg())
        (third,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        assert len(rx.requests) == 1
        assert (await row(clean_pool, third))["last_error"] == "endpoint_disabled"
        await relay.aclose()


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        (Reply.of_json(429, {}, {"Retry-After": "5"}), "pending", "http_429"),
        (Reply(502, b"<html>bad gateway</html>"), "pending", "http_502"),
        (Hang(4.0), "pending", "timeout"),
        (Reset(), "pending", "transport: "),  # ReadError or RemoteProtocolError: timing
        (Reply(400, b"{}"), "dead", "http_400"),
        (Reply(404), "dead", "http_404"),
        (Reply(200, b"not json at all"), "sent", None),  # any 2xx: the body is not read
    ],
)
async def test_answers(
    clean_pool: asyncpg.Pool, answer: Answer, status: str, error: str | None
) -> None:
    async with FakeReceiver(SECRET, Script(answer)) as rx:
        gw = gateway(clean_pool, rx.url, timeout_s=1.5)  # roomy for a loaded CI machine
        relay = Relay(clean_pool, {"push": gw}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        r = await row(clean_pool, oid)
        assert r["status"] == status
        assert r["last_error"] == error or (error and r["last_error"].startswith(error))
        assert len(rx.requests) == 1
        await relay.aclose()


async def test_a_wrong_secret_is_refused_by_the_receiver(clean_pool: asyncpg.Pool) -> None:
    other = "whsec_" + base64.b64encode(b"not-the-partner-secret").decode()
    async with FakeReceiver(SECRET) as rx:
        relay = Relay(clean_pool, {"push": gateway(clean_pool, rx.url, other)}, cfg())
        (oid,) = await add_rows(clean_pool, 1, channel="push")
        await relay.run_once()
        assert rx.bad_signatures == 1
        assert (await row(clean_pool, oid))["last_error"] == "http_401"
        await relay.aclose()


async def test_build_gateways_one_webhook_for_both_channels(settings_factory, clean_pool) -> None:  # type: ignore[no-untyped-def]
    s = settings_factory(
        delivery_sms_gateway="webhook",
        delivery_push_gateway="webhook",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=SECRET,
    )
    gws = build_gateways(s, DeliveryDirectory(clean_pool, None))
    assert isinstance(gws["sms"], WebhookGateway)
    assert gws["sms"] is gws["push"]
    assert json.loads(json.dumps(s.model_dump(mode="json")))["webhook_secret"] == "**********"
    await gws["sms"].aclose()


async def test_the_endpoint_state_is_read_once_per_ttl_not_per_message(
    clean_pool: asyncpg.Pool,
) -> None:
    """Another relay disabled the endpoint: this gateway sees it once its cached state is older
    than the TTL, or at once after forget_state (what the enable route calls)."""
    d = DeliveryDirectory(clean_pool, None)
    async with FakeReceiver(SECRET) as rx:
        gw = gateway(clean_pool, rx.url, state_ttl_s=3600.0)
        relay = Relay(clean_pool, {"push": gw}, cfg(batch_size=1))
        await add_rows(clean_pool, 3, channel="push")
        assert (await relay.run_once()).sent == 1  # reads the state: enabled
        await d.disable_webhook(rx.url, "http_410")  # as another relay process would
        assert (await relay.run_once()).sent == 1  # the cached state, not yet re-read
        gw.forget_state()
        assert (await relay.run_once()).dead == 1  # read again: disabled, no call
        assert len(rx.requests) == 2
        await relay.aclose()
        # a TTL of 0 reads the state for every message
        gw = gateway(clean_pool, rx.url, state_ttl_s=0.0)
        relay = Relay(clean_pool, {"push": gw}, cfg(batch_size=1))
        await clean_pool.execute("UPDATE webhook_endpoints SET disabled_at = NULL")
        await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).sent == 1
        await d.disable_webhook(rx.url, "http_410")
        await add_rows(clean_pool, 1, channel="push")
        assert (await relay.run_once()).dead == 1
        assert len(rx.requests) == 3
        await relay.aclose()
