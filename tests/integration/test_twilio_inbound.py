"""Incoming SMS through the real app on PostgreSQL, signed as Twilio signs them: STOP / ARRÊT /
START change the SMS consent at once (database, profile memory, the next decision); a replay
changes nothing; other texts change nothing; an unknown number is acknowledged with empty TwiML,
changes nothing and leaves no phone number in the logs. (Keyword matching, case by case:
tests/unit/test_sms_keywords.py.)"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from adapters.delivery.inbound import phone_hash
from tests.integration.test_decisions import GRANTED, _setup, _walk_in
from tests.integration.test_twilio_callbacks import (
    PHONE,
    Env,
    _env,
    _in_memory_sms,
    _link_phone,
    _settings,
    _sms_consent,
)


@pytest.fixture
async def env(clean_pool, settings_factory) -> AsyncIterator[Env]:  # type: ignore[no-untyped-def]
    async for e in _env(_settings(settings_factory)):
        yield e


async def test_inbound_stop_arret_and_start_change_consent_at_once(env: Env) -> None:
    await _setup(env.admin, {"sms": GRANTED}, channels=["sms"])
    await _link_phone(env, "alice", "06 12 34 56 78")
    r = await env.sms("  Stop! ", "SMin10")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert r.text.endswith("<Response/>")
    consent = await _sms_consent(env, "alice")
    assert (consent["status"], consent["source"]) == ("revoked", "sms_inbound_stop")
    assert not _in_memory_sms(env, "alice")

    assert (await env.sms("start", "SMin11")).status_code == 200
    consent = await _sms_consent(env, "alice")
    assert (consent["status"], consent["source"]) == ("granted", "sms_inbound_start")
    assert _in_memory_sms(env, "alice")

    # Twilio retrying (or anyone replaying) the first STOP: not applied twice
    assert (await env.sms("  Stop! ", "SMin10")).status_code == 200
    assert _in_memory_sms(env, "alice")

    for n, body in enumerate(["ARRÊT", "arret.", "Désabonner", "STOP SMS", "stop please"]):
        await env.sms("START", f"SMup{n}")
        assert _in_memory_sms(env, "alice")
        assert (await env.sms(body, f"SMdown{n}")).status_code == 200
        assert not _in_memory_sms(env, "alice"), body
    # the next visit: no SMS for alice
    await _walk_in(env.admin)
    d = (await env.admin.get("/v1/decisions", params={"customer_id": "alice"})).json()
    assert d["decisions"][0]["traces"][0]["result"] == "no_consent"

    logged = await env.svc.pool.fetch(
        "SELECT source, status FROM consent_log WHERE customer_id = 'alice'"
        " AND source LIKE 'sms_inbound%' ORDER BY id"
    )
    assert len(logged) == 2 + 2 * 5
    rows = await env.svc.pool.fetch("SELECT * FROM inbound_messages ORDER BY id")
    assert len(rows) == 12  # the replay is not a new row
    assert {r["customer_id"] for r in rows} == {"alice"}
    assert {r["phone_hash"] for r in rows} == {None}
    assert rows[0]["keyword"] == "STOP" and rows[0]["action"] == "opt_out"


async def test_other_texts_change_nothing(env: Env) -> None:
    await _setup(env.admin, {"sms": GRANTED}, channels=["sms"])
    await _link_phone(env, "alice", PHONE)
    for n, body in enumerate(["Merci !", "yes but stop", "", "HELP", "Je veux stopper"]):
        r = await env.sms(body, f"SMx{n}")
        assert r.status_code == 200 and r.text.endswith("<Response/>")
    assert _in_memory_sms(env, "alice")
    assert (await _sms_consent(env, "alice"))["status"] == "granted"
    actions = await env.svc.pool.fetch("SELECT action FROM inbound_messages ORDER BY id")
    assert [a["action"] for a in actions] == ["none", "none", "none", "help", "none"]


async def test_unknown_number_is_acknowledged_changes_nothing_and_is_not_logged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    await _setup(env.admin, {"sms": GRANTED}, channels=["sms"])
    await _link_phone(env, "alice", PHONE)
    stranger = "+33698765432"
    with caplog.at_level(logging.DEBUG):
        r = await env.sms("STOP", "SMz1", sender=stranger)
        junk = await env.sms("STOP", "SMz2", sender="not a number")
    assert r.status_code == junk.status_code == 200
    assert r.headers["content-type"].startswith("text/xml") and r.text.endswith("<Response/>")
    assert _in_memory_sms(env, "alice")
    assert (
        await env.svc.pool.fetchval("SELECT count(*) FROM consent_log WHERE status = 'revoked'")
        == 0
    )
    row = await env.svc.pool.fetchrow("SELECT * FROM inbound_messages WHERE message_sid = 'SMz1'")
    assert row["customer_id"] is None and row["phone_hash"] == phone_hash(stranger)
    text = caplog.text + repr([rec.args for rec in caplog.records])
    assert stranger not in text and "698765432" not in text and "not a number" not in text
    assert phone_hash(stranger) in caplog.text  # pseudonymous trace of what happened
