"""The Twilio gateway over real sockets against a loopback fake of Twilio: Basic auth and the
form as Twilio reads them, 201 with a sid, documented error codes, 429 with Retry-After, 5xx,
a hang past the client's timeout and a connection reset, through the relay."""

from __future__ import annotations

import asyncpg
import pytest

from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.twilio import TwilioGateway
from adapters.delivery.relay import Relay
from tests.fakes.http import Answer, Hang, Reply, Reset, Script
from tests.fakes.twilio import FakeTwilio, twilio_error
from tests.integration.test_relay import Clock, add_rows, cfg, row

SID = "AC" + "0" * 32
TOKEN = "auth-token"
PHONE = "+33612345678"


async def relay_for(pool: asyncpg.Pool, fake: FakeTwilio, token: str = TOKEN) -> Relay:
    await pool.execute(
        "INSERT INTO identities (type, value, customer_id) VALUES ('phone', $1, 'alice')"
        " ON CONFLICT DO NOTHING",
        PHONE,
    )
    d = DeliveryDirectory(pool, None)
    gw = TwilioGateway(
        account_sid=SID,
        auth_token=token,
        phone_of=d.phone_of,
        on_opt_out=d.revoke_sms,
        on_invalid_number=d.mark_phone_invalid,
        base_url=fake.url,
        from_number="+33700000000",
        timeout_s=1.5,  # roomy: a loaded CI machine must not turn a 201 into a timeout
    )
    return Relay(pool, {"sms": gw}, cfg(backoff_base_s=10.0, jitter=0.0), clock=Clock())


async def test_201_with_a_sid_over_a_real_socket(clean_pool: asyncpg.Pool) -> None:
    async with FakeTwilio(SID, TOKEN) as fake:
        relay = await relay_for(clean_pool, fake)
        (oid,) = await add_rows(clean_pool, 1)
        assert (await relay.run_once()).sent == 1
        (form,) = fake.sent
        assert (form["To"], form["From"]) == (PHONE, "+33700000000")
        r = await row(clean_pool, oid)
        assert r["status"] == "sent" and r["provider_id"].startswith("SM")
        await relay.aclose()


async def test_a_wrong_auth_token_is_refused_and_dead(clean_pool: asyncpg.Pool) -> None:
    async with FakeTwilio(SID, TOKEN) as fake:
        relay = await relay_for(clean_pool, fake, token="wrong")
        (oid,) = await add_rows(clean_pool, 1)
        await relay.run_once()
        assert (await row(clean_pool, oid))["last_error"] == "http_401_20003"
        await relay.aclose()


@pytest.mark.parametrize(
    ("answer", "status", "error", "wait"),
    [
        (twilio_error(429, 20429, {"Retry-After": "90"}), "pending", "too_many_requests", 90.0),
        (Reply(503, b"<html>down</html>"), "pending", "http_503", 10.0),
        (Hang(4.0), "pending", "timeout", 10.0),
        (Reset(), "pending", "transport: ", 10.0),
        (twilio_error(400, 21211), "dead", "invalid_number_21211", None),
        (twilio_error(400, 21606), "dead", "http_400_21606", None),
        (Reply(201, b"<xml/>"), "pending", "garbage_response", 10.0),
    ],
)
async def test_answers(
    clean_pool: asyncpg.Pool, answer: Answer, status: str, error: str, wait: float | None
) -> None:
    async with FakeTwilio(SID, TOKEN, Script(answer)) as fake:
        relay = await relay_for(clean_pool, fake)
        (oid,) = await add_rows(clean_pool, 1)
        await relay.run_once()
        r = await row(clean_pool, oid)
        assert r["status"] == status
        assert r["last_error"].startswith(error)
        assert len(fake.requests) == 1
        if wait is not None:
            now = relay.clock()
            assert r["next_attempt_at"].timestamp() == pytest.approx(now + wait, abs=1e-3)
        await relay.aclose()
