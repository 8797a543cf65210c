"""Webhook endpoints through the API, with the real gateway against a loopback receiver: a 410
disables the endpoint, the listing shows it (without the URL's secrets), enabling it makes the
very next message go out; unknown and malformed ids are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from adapters.composition import Services
from adapters.delivery.outbox_admin import endpoint_id, redact_url
from tests.conftest import ADMIN_KEY
from tests.fakes.http import Reply, Script
from tests.fakes.webhook import FakeReceiver
from tests.integration.test_beacons import _as, _key
from tests.integration.test_relay import add_rows, row
from tests.integration.test_webhook_gateway import SECRET


@pytest.fixture
async def world(
    clean_pool: asyncpg.Pool, settings_factory
) -> AsyncIterator[tuple[httpx.AsyncClient, Services, FakeReceiver, str]]:  # type: ignore[no-untyped-def]
    """The push channel on the webhook gateway; the receiver answers 410 once, then 204."""
    from adapters.api.app import create_app
    from adapters.composition import build_services

    async with FakeReceiver(SECRET, Script(Reply(410), None)) as rx:
        url = f"{rx.url}/hooks/geo?token=partner-token-123"
        svc = await build_services(
            settings_factory(
                delivery_push_gateway="webhook", webhook_url=url, webhook_secret=SECRET
            ),
            background=False,
        )
        transport = httpx.ASGITransport(app=create_app(services=svc))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as c:
            yield c, svc, rx, url
        await svc.close()


async def test_410_then_list_then_enable_then_delivered(world) -> None:  # type: ignore[no-untyped-def]
    c, svc, rx, url = world
    assert svc.relay is not None
    ident = endpoint_id(url)
    # in use: listed as the configured endpoint, enabled
    (listed,) = (await c.get("/v1/webhook-endpoints")).json()["endpoints"]
    assert (listed["id"], listed["configured"], listed["disabled_at"]) == (ident, True, None)

    (first,) = await add_rows(svc.pool, 1, channel="push")
    await svc.relay.run_once()  # the 410
    (second,) = await add_rows(svc.pool, 1, channel="push")
    await svc.relay.run_once()
    assert len(rx.requests) == 1  # the second was not even sent
    for oid in (first, second):
        assert (await row(svc.pool, oid))["last_error"] == "endpoint_disabled"

    r = await c.get("/v1/webhook-endpoints")
    assert r.status_code == 200, r.text
    (ep,) = r.json()["endpoints"]
    assert ep["id"] == ident and ep["configured"] is True
    assert ep["disabled_at"] is not None and ep["disabled_reason"] == "http_410"
    assert ep["url"] == f"{rx.url}/hooks/geo?***"
    assert "partner-token-123" not in r.text and "whsec_" not in r.text

    r = await c.post(f"/v1/webhook-endpoints/{ident}/enable")
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["disabled_at"], r.json()["disabled_reason"]) == (
        ident,
        None,
        None,
    )
    # the same relay, the same gateway object: the next message goes out at once
    (third,) = await add_rows(svc.pool, 1, channel="push")
    assert (await svc.relay.run_once()).sent == 1
    assert (await row(svc.pool, third))["status"] == "sent"
    assert len(rx.requests) == 2 and rx.bad_signatures == 0
    assert list(rx.delivered) == [(await row(svc.pool, third))["idempotency_key"]]
    # the dead letters stay dead until re-driven one by one
    assert (await row(svc.pool, second))["status"] == "dead"
    assert (await c.post(f"/v1/outbox/{second}/retry")).status_code == 200
    assert (await svc.relay.run_once()).sent == 1
    # enabling again changes nothing
    r = await c.post(f"/v1/webhook-endpoints/{ident}/enable")
    assert r.status_code == 200 and r.json()["disabled_at"] is None


async def test_unknown_and_malformed_ids(world) -> None:  # type: ignore[no-untyped-def]
    c, *_ = world
    r = await c.post("/v1/webhook-endpoints/0123456789abcdef/enable")
    assert r.status_code == 404, r.text
    r = await c.post("/v1/webhook-endpoints/not-an-id/enable")
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].endswith("endpoint_id")


async def test_ingest_key_may_not_list_nor_enable(world) -> None:  # type: ignore[no-untyped-def]
    c, *_ = world
    h = _as(await _key(c, "ingest"))
    assert (await c.get("/v1/webhook-endpoints", headers=h)).status_code == 403
    r = await c.post("/v1/webhook-endpoints/0123456789abcdef/enable", headers=h)
    assert r.status_code == 403


def test_urls_are_shown_without_secrets() -> None:
    assert redact_url("https://u:pw@h.example:8443/p?k=v#f") == "https://u:***@h.example:8443/p?***"
    assert redact_url("https://h.example/p") == "https://h.example/p"
    assert redact_url("http://[::1]:99999/x") == "***"  # a port out of range: nothing shown
    assert endpoint_id("https://h.example/p") == endpoint_id("https://h.example/p")
    assert endpoint_id("https://h.example/p") != endpoint_id("https://h.example/q")


async def test_enable_with_redrive_sends_the_unexpired_dead_letters(world) -> None:  # type: ignore[no-untyped-def]
    c, svc, rx, url = world
    assert svc.relay is not None
    (gone,) = await add_rows(svc.pool, 1, channel="push")
    await svc.relay.run_once()  # the 410
    waiting = await add_rows(svc.pool, 3, channel="push")
    await svc.relay.run_once()  # dead letters without a call
    stale = waiting[0]
    await svc.pool.execute("UPDATE outbox SET expires_at = now() WHERE id = $1", stale)
    other = await add_rows(svc.pool, 1, channel="sms")  # another reason to be dead: untouched
    await svc.pool.execute(
        "UPDATE outbox SET status = 'dead', last_error = 'http_400' WHERE id = $1", other[0]
    )
    r = await c.post(f"/v1/webhook-endpoints/{endpoint_id(url)}/enable?redrive_dead=true")
    assert r.status_code == 200, r.text
    assert r.json()["redriven"] == 3 and r.json()["disabled_at"] is None  # gone + 2 waiting
    assert (await svc.relay.run_once()).sent == 3
    assert (await row(svc.pool, stale))["status"] == "dead"  # expired: not re-driven
    assert (await row(svc.pool, other[0]))["status"] == "dead"
    for oid in (gone, *waiting[1:]):
        assert (await row(svc.pool, oid))["status"] == "sent"
    assert len(rx.delivered) == 3 and rx.bad_signatures == 0
    r = await c.post(f"/v1/webhook-endpoints/{endpoint_id(url)}/enable?redrive_dead=maybe")
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("redrive_dead")
