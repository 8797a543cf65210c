"""Twilio's callbacks through the real app on PostgreSQL, signed exactly as Twilio signs them (no
API key): delivery statuses move forward only and are all logged; 21610 revokes the SMS consent
so the next decision no longer picks SMS (and a replayed 21610 does not undo a later START);
unsigned 401, bad signature 403 (nothing changed), unknown sid 404, malformed 422 naming the
field; Twilio's documented signature accepted end to end; the URL signed when none is set.
Incoming SMS: tests/integration/test_twilio_inbound.py (helpers shared from here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.composition import Services
from adapters.delivery.twilio_signature import compute_signature
from geo_engine.decision.facts import customer_of
from tests.conftest import ADMIN_KEY
from tests.helpers import ALWAYS_OPEN
from tests.integration.test_decisions import GRANTED, _setup, _walk_in
from tests.integration.test_relay import add_rows

TOKEN = "tw-auth-token-0123456789abcdef"
STATUS_URL = "https://engine.example/v1/callbacks/twilio/status"
INBOUND_URL = "https://engine.example/v1/callbacks/twilio/inbound"
STATUS, INBOUND = "/v1/callbacks/twilio/status", "/v1/callbacks/twilio/inbound"
PHONE = "+33612345678"
ACCOUNT = "AC" + "0" * 32


@dataclass
class Env:
    svc: Services
    admin: httpx.AsyncClient  # the operator's key: setup and reads
    twilio: httpx.AsyncClient  # no key at all, as Twilio calls

    async def post(
        self,
        path: str,
        form: dict[str, str],
        *,
        url: str | None = None,
        token: str = TOKEN,
        signature: str | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        url = url or (STATUS_URL if path == STATUS else INBOUND_URL)
        headers = {}
        if signed:
            sig = signature or compute_signature(token, url, list(form.items()))
            headers["X-Twilio-Signature"] = sig
        return await self.twilio.post(path, data=form, headers=headers)

    async def status(self, sid: str, status: str, **extra: str) -> httpx.Response:
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT}
        form.update({"To": PHONE, "From": "+33700000000", **extra})
        return await self.post(STATUS, form)

    async def sms(self, body: str, sid: str, sender: str = PHONE) -> httpx.Response:
        form = {"MessageSid": sid, "From": sender, "To": "+33700000000", "Body": body}
        return await self.post(INBOUND, {**form, "AccountSid": ACCOUNT, "NumMedia": "0"})


async def _env(settings: Any) -> AsyncIterator[Env]:
    from adapters.api.app import create_app
    from adapters.composition import build_services

    svc = await build_services(settings, background=False)
    transport = httpx.ASGITransport(app=create_app(services=svc))
    admin_h = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test", headers=admin_h) as a,
        httpx.AsyncClient(transport=transport, base_url="http://test") as t,
    ):
        yield Env(svc, a, t)
    await svc.close()


def _settings(settings_factory, **over: Any) -> Any:  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {
        "twilio_auth_token": TOKEN,
        "twilio_status_callback": STATUS_URL,
        "twilio_inbound_url": INBOUND_URL,
        "twilio_status_wait_s": 0.0,  # the unknown-sid wait has its own test
        **ALWAYS_OPEN,  # decisions independent of the clock
    }
    return settings_factory(**{**base, **over})


@pytest.fixture
async def env(clean_pool, settings_factory) -> AsyncIterator[Env]:  # type: ignore[no-untyped-def]
    async for e in _env(_settings(settings_factory)):
        yield e


async def _sent_row(pool: asyncpg.Pool, sid: str, customer: str = "alice") -> int:
    (oid,) = await add_rows(pool, customer=customer)
    await pool.execute(
        "UPDATE outbox SET status = 'sent', provider_id = $2 WHERE id = $1", oid, sid
    )
    return oid


async def _link_phone(env: Env, customer: str, phone: str) -> None:
    body = {"customer_id": customer, "identifiers": [{"type": "phone", "value": phone}]}
    r = await env.admin.post("/v1/identities/link", json=body)
    assert r.status_code == 200, r.text


async def _sms_consent(env: Env, customer: str) -> dict[str, Any]:
    r = await env.admin.get(f"/v1/customers/{customer}/profile")
    assert r.status_code == 200, r.text
    consent: dict[str, Any] = r.json()["consents"]["sms"]
    return consent


def _in_memory_sms(env: Env, customer: str) -> bool:
    """What the decisions read: the profile service's in-memory consents."""
    p = env.svc.profiles.profile(customer)
    assert p is not None
    return "sms" in customer_of(p).consented


# --- status callbacks ---------------------------------------------------------------------------


async def test_statuses_move_forward_only_and_every_callback_is_logged(env: Env) -> None:
    oid = await _sent_row(env.svc.pool, "SMaaa")
    for status in ("queued", "sent", "delivered"):
        r = await env.status("SMaaa", status)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "message_sid": "SMaaa",
            "outbox_id": oid,
            "delivery_status": status,
            "applied": True,
        }
    row = await env.svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert row["delivery_status"] == "delivered" and row["delivered_at"] is not None
    delivered_at = row["delivered_at"]
    # Twilio's callbacks race: a late 'sent' (and a repeated 'delivered') must not regress it
    for late in ("sent", "delivered", "queued"):
        r = await env.status("SMaaa", late)
        assert r.status_code == 200
        assert (r.json()["delivery_status"], r.json()["applied"]) == ("delivered", False)
    row = await env.svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (row["delivery_status"], row["delivered_at"]) == ("delivered", delivered_at)
    assert row["status"] == "sent"  # the relay's own status is not the callbacks' business
    log = await env.svc.pool.fetch(
        "SELECT status, applied, customer_id, provider_id FROM delivery_status_log"
        " WHERE outbox_id = $1 ORDER BY id",
        oid,
    )
    assert [(r["status"], r["applied"]) for r in log] == [
        ("queued", True),
        ("sent", True),
        ("delivered", True),
        ("sent", False),
        ("delivered", False),
        ("queued", False),
    ]
    assert {(r["customer_id"], r["provider_id"]) for r in log} == {("alice", "SMaaa")}
    # 'read' (after delivered) still moves forward
    assert (await env.status("SMaaa", "read")).json()["delivery_status"] == "read"


async def test_failure_codes_are_recorded_and_30006_marks_the_number_invalid(env: Env) -> None:
    await _link_phone(env, "alice", "06 12 34 56 78")  # stored as E.164 by the link API
    oid = await _sent_row(env.svc.pool, "SMbbb")
    r = await env.status("SMbbb", "undelivered", ErrorCode="30003")
    assert r.status_code == 200 and r.json()["delivery_status"] == "undelivered"
    row = await env.svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert (row["delivery_error_code"], row["delivered_at"]) == (30003, None)
    ident = await env.svc.pool.fetchrow("SELECT * FROM identities WHERE type = 'phone'")
    assert ident["invalid_at"] is None  # 30003: recorded only
    oid2 = await _sent_row(env.svc.pool, "SMccc")
    r = await env.status("SMccc", "undelivered", ErrorCode="30006")
    assert r.status_code == 200
    ident = await env.svc.pool.fetchrow("SELECT * FROM identities WHERE type = 'phone'")
    assert (ident["value"], ident["invalid_reason"]) == (PHONE, "twilio_30006")
    assert (
        await env.svc.pool.fetchval(
            "SELECT error_code FROM delivery_status_log WHERE outbox_id = $1", oid2
        )
        == 30006
    )


async def test_21610_revokes_sms_consent_and_the_next_decision_skips_sms(env: Env) -> None:
    await _setup(env.admin, {"sms": GRANTED}, channels=["sms"])
    assert _in_memory_sms(env, "alice")
    await _sent_row(env.svc.pool, "SMddd")
    r = await env.status("SMddd", "failed", ErrorCode="21610")
    assert r.status_code == 200, r.text
    consent = await _sms_consent(env, "alice")
    assert (consent["status"], consent["source"]) == ("revoked", "sms_status_21610")
    assert not _in_memory_sms(env, "alice")
    logged = await env.svc.pool.fetchval(
        "SELECT count(*) FROM consent_log WHERE customer_id = 'alice' AND status = 'revoked'"
    )
    assert logged == 1
    # the customer texts START; a repeat of that 21610 callback must not undo it
    await _link_phone(env, "alice", PHONE)
    assert (await env.sms("START", "SMstart")).status_code == 200
    assert _in_memory_sms(env, "alice")
    assert (await env.status("SMddd", "failed", ErrorCode="21610")).json()["applied"] is False
    assert _in_memory_sms(env, "alice")
    assert (await env.sms("STOP", "SMstop")).status_code == 200
    assert not _in_memory_sms(env, "alice")
    # a visit now: the SMS-only campaign has no channel left for alice
    await _walk_in(env.admin)
    d = (await env.admin.get("/v1/decisions", params={"customer_id": "alice"})).json()
    (new,) = [x for x in d["decisions"] if x["trigger_kind"] == "presence" and x["traces"]]
    assert (new["outcome"], new["traces"][0]["result"]) == ("none", "no_consent")
    assert await env.svc.pool.fetchval("SELECT count(*) FROM outbox") == 1  # the SMS sent before


async def test_unsigned_401_bad_signature_403_and_nothing_changes(env: Env) -> None:
    oid = await _sent_row(env.svc.pool, "SMeee")
    form = {"MessageSid": "SMeee", "MessageStatus": "delivered", "ErrorCode": "21610"}
    assert (await env.post(STATUS, form, signed=False)).status_code == 401
    refused = [
        await env.post(STATUS, form, token="another-token"),
        await env.post(STATUS, form, url="https://evil.example/v1/callbacks/twilio/status"),
        await env.post(STATUS, form, url="http://test/v1/callbacks/twilio/status"),  # not public
        await env.post(STATUS, form, signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert refused[0].json()["detail"] == "X-Twilio-Signature does not match this request"
    # tampered: signed for 'sent', sent as 'delivered'
    sig = compute_signature(TOKEN, STATUS_URL, list({**form, "MessageStatus": "sent"}.items()))
    assert (await env.post(STATUS, form, signature=sig)).status_code == 403
    # an API key is no substitute for the signature, admin's included
    r = await env.admin.post(STATUS, data=form)
    assert r.status_code == 401
    row = await env.svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", oid)
    assert row["delivery_status"] is None
    assert await env.svc.pool.fetchval("SELECT count(*) FROM delivery_status_log") == 0
    assert await env.svc.pool.fetchval("SELECT count(*) FROM consent_log") == 0
    # inbound: same
    stop = {"MessageSid": "SMin0", "From": PHONE, "Body": "STOP"}
    assert (await env.post(INBOUND, stop, signed=False)).status_code == 401
    assert (await env.post(INBOUND, stop, token="nope")).status_code == 403
    assert await env.svc.pool.fetchval("SELECT count(*) FROM inbound_messages") == 0


async def test_no_auth_token_configured_refuses_every_callback(
    clean_pool, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    async for e in _env(_settings(settings_factory, twilio_auth_token="")):
        await _sent_row(e.svc.pool, "SMfff")
        r = await e.status("SMfff", "delivered")
        assert r.status_code == 403 and "no Twilio auth token" in r.json()["detail"]


async def test_unknown_sid_404_and_malformed_422_name_the_field(env: Env) -> None:
    await _sent_row(env.svc.pool, "SMggg")
    r = await env.status("SMnobody", "delivered")
    assert r.status_code == 404 and "SMnobody" in r.json()["detail"]
    cases = [
        ({"MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "SMggg"}, "MessageStatus"),
        ({"MessageSid": "SMggg", "MessageStatus": "teleported"}, "MessageStatus"),
        ({"MessageSid": "SMggg", "MessageStatus": "failed", "ErrorCode": "abc"}, "ErrorCode"),
        ({"MessageSid": "SMggg", "MessageStatus": "failed", "ErrorCode": "9" * 12}, "ErrorCode"),
        ({"MessageSid": "S" * 65, "MessageStatus": "sent"}, "MessageSid"),
    ]
    for form, field in cases:
        r = await env.post(STATUS, form)
        assert r.status_code == 422, (form, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    r = await env.post(INBOUND, {"MessageSid": "SMin1", "Body": "STOP"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "From")
    # a JSON body is not read (Twilio posts forms): signed over the URL alone, it has no sid
    sig = compute_signature(TOKEN, STATUS_URL, [])
    r = await env.twilio.post(
        STATUS, json={"MessageSid": "SMggg"}, headers={"X-Twilio-Signature": sig}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "MessageSid"
    # signed garbage: a 4xx, never a 500
    for form in (
        {"MessageSid": "SM\x00", "MessageStatus": "sent"},
        {"MessageSid": "SMggg", "MessageStatus": "sent\x00"},
        {"MessageSid": "SMggg", "MessageStatus": "sent", "ErrorCode": "٣"},  # a non-ASCII digit
    ):
        assert 400 <= (await env.post(STATUS, form)).status_code < 500, form
    for form in (
        {"MessageSid": "SM\x00", "From": PHONE, "Body": "STOP"},
        {"MessageSid": "SMin2", "From": "+33\x00" + "9" * 500, "Body": "\x00STOP"},
    ):
        assert (await env.post(INBOUND, form)).status_code in (200, 422), form
    assert await env.svc.pool.fetchval("SELECT count(*) FROM delivery_status_log") == 0


async def test_a_callback_before_the_relay_commits_the_sid_waits_for_it(
    clean_pool, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    async for e in _env(_settings(settings_factory, twilio_status_wait_s=2.0)):
        (oid,) = await add_rows(e.svc.pool)

        async def relay_commits_later(pool: asyncpg.Pool, oid: int) -> None:
            await asyncio.sleep(0.6)
            await pool.execute(
                "UPDATE outbox SET status = 'sent', provider_id = 'SMlate' WHERE id = $1", oid
            )

        t0 = time.monotonic()
        r, _ = await asyncio.gather(
            e.status("SMlate", "sent"), relay_commits_later(e.svc.pool, oid)
        )
        # found once the relay committed (it waited for it), not the 404 of giving up; no upper
        # bound on the time: a loaded machine may take longer, the outcome says enough
        assert r.status_code == 200 and r.json()["outbox_id"] == oid, r.text
        assert time.monotonic() - t0 >= 0.5
        t0 = time.monotonic()
        assert (await e.status("SMnever", "sent")).status_code == 404
        assert time.monotonic() - t0 >= 2.0  # gave up only after the whole wait


async def test_twilio_documented_vector_is_accepted_end_to_end(
    clean_pool, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    """Twilio's published example (token 12345): the hard-coded signature passes the app's
    check (then 422: it is a voice call's form, without MessageSid); one changed digit, 403."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    async for e in _env(
        _settings(settings_factory, twilio_auth_token="12345", twilio_status_callback=url)
    ):
        sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        r = await e.post(STATUS, form, signature=sig)
        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "MessageSid")
        r = await e.post(STATUS, {**form, "Digits": "1235"}, signature=sig)
        assert r.status_code == 403


async def test_without_configured_urls_the_request_url_is_signed(
    clean_pool, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    s = _settings(settings_factory, twilio_status_callback=None, twilio_inbound_url=None)
    async for e in _env(s):
        await _sent_row(e.svc.pool, "SMhhh")
        form = {"MessageSid": "SMhhh", "MessageStatus": "sent"}
        r = await e.post(STATUS, form, url="http://test" + STATUS)
        assert r.status_code == 200, r.text
        # forwarded headers are not trusted unless configured
        public = "https://api.shop.example" + STATUS
        sig = compute_signature(TOKEN, public, list(form.items()))
        fwd = {"X-Twilio-Signature": sig, "X-Forwarded-Proto": "https"}
        fwd["X-Forwarded-Host"] = "api.shop.example"
        assert (await e.twilio.post(STATUS, data=form, headers=fwd)).status_code == 403
    s = _settings(
        settings_factory,
        twilio_status_callback=None,
        twilio_inbound_url=None,
        twilio_trust_forwarded=True,
    )
    async for e in _env(s):
        await _sent_row(e.svc.pool, "SMhhh")
        r = await e.twilio.post(STATUS, data=form, headers=fwd)
        assert r.status_code == 200, r.text
