"""An opt-out is honoured at once, also for offers decided before it: the relay re-checks the
channel's consent and the objection to direct marketing when it claims a row."""

from __future__ import annotations

import asyncpg
import pytest

from adapters.delivery.relay import Relay
from tests.integration.test_relay import Fake, add_rows, cfg, row


async def _say(pool: asyncpg.Pool, customer: str, purpose: str, status: str) -> None:
    await pool.execute(
        "INSERT INTO customer_consents (customer_id, purpose, status, at, source)"
        " VALUES ($1, $2, $3, now(), 'test')",
        customer,
        purpose,
        status,
    )


@pytest.mark.parametrize(
    ("purpose", "status", "channel", "sent"),
    [
        ("sms", "revoked", "sms", False),  # STOP after the decision (an SMS held for the window)
        ("sms", "denied", "sms", False),
        ("direct_marketing", "denied", "push", False),  # objection: every channel
        ("push", "revoked", "sms", True),  # another channel's withdrawal does not count
        ("sms", "granted", "sms", True),
    ],
)
async def test_withdrawn_consent_stops_a_pending_offer(
    clean_pool: asyncpg.Pool, purpose: str, status: str, channel: str, sent: bool
) -> None:
    (kept,) = await add_rows(clean_pool, channel=channel, customer="bob")
    (oid,) = await add_rows(clean_pool, channel=channel, customer="alice")
    await _say(clean_pool, "alice", purpose, status)
    gw = Fake()
    stats = await Relay(clean_pool, {channel: gw}, cfg()).run_once()
    r = await row(clean_pool, oid)
    assert (await row(clean_pool, kept))["status"] == "sent"
    if sent:
        assert r["status"] == "sent" and stats.sent == 2
        assert sorted(m.customer_id for m in gw.calls) == ["alice", "bob"]
    else:
        assert (r["status"], r["last_error"]) == ("dead", "consent_withdrawn")
        assert [m.customer_id for m in gw.calls] == ["bob"]
        attempt = await clean_pool.fetchrow(
            "SELECT gateway, outcome, error FROM delivery_attempts WHERE outbox_id = $1", oid
        )
        assert tuple(attempt) == ("-", "dead", "consent_withdrawn")
