"""`GET /v1/outbox/{id}` (admin): one message with every gateway attempt (a retry, then sent)
and every status callback Twilio made, applied or not, in order; 404 unknown, 422 bad ids,
403 for other roles."""

from __future__ import annotations

from adapters.delivery.gateways.base import Result
from adapters.delivery.relay import Relay
from tests.integration.test_beacons import _as, _key
from tests.integration.test_relay import Clock, Fake, add_rows, cfg
from tests.integration.test_twilio_callbacks import Env, env

__all__ = ["env"]  # the fixture, used by name


async def test_one_message_with_its_attempts_and_status_log(env: Env) -> None:
    pool = env.svc.pool
    (oid,) = await add_rows(pool, 1)
    gw = Fake(Result.retry("http_503", 503), Result.sent("SMdetail", 201))
    relay = Relay(pool, {"sms": gw}, cfg(backoff_base_s=0.0, jitter=0.0), clock=Clock())
    await relay.drain()
    assert len(gw.calls) == 2
    (other,) = await add_rows(pool, 1, customer="bob")  # never in alice's answer
    await Relay(pool, {"sms": Fake(Result.sent("SMbob"))}, cfg(), clock=Clock()).drain()
    for status in ("queued", "delivered", "sent"):  # the late 'sent' is logged, not applied
        assert (await env.status("SMdetail", status)).status_code == 200

    r = await env.admin.get(f"/v1/outbox/{oid}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["id"], got["customer_id"], got["channel"]) == (oid, "alice", "sms")
    assert (got["status"], got["attempts"], got["provider_id"]) == ("sent", 2, "SMdetail")
    assert got["delivery_status"] == "delivered" and got["delivered_at"] is not None
    attempts = [
        (a["attempt"], a["gateway"], a["outcome"], a["http_status"], a["error"])
        for a in got["delivery_attempts"]
    ]
    assert attempts == [(1, "fake", "retry", 503, "http_503"), (2, "fake", "sent", 201, None)]
    log = [(s["status"], s["applied"]) for s in got["status_log"]]
    assert log == [("queued", True), ("delivered", True), ("sent", False)]
    # bob's message: its own single attempt, no callbacks
    r = await env.admin.get(f"/v1/outbox/{other}")
    assert r.status_code == 200, r.text
    assert [a["attempt"] for a in r.json()["delivery_attempts"]] == [1]
    assert r.json()["status_log"] == []


async def test_unknown_bad_and_forbidden(env: Env) -> None:
    r = await env.admin.get("/v1/outbox/999999")
    assert r.status_code == 404, r.text
    for bad in ("0", "abc", str(2**63)):
        r = await env.admin.get(f"/v1/outbox/{bad}")
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"].endswith("outbox_id"), r.text
    for role in ("ingest", "staff"):
        h = _as(await _key(env.admin, role, ["s1"] if role == "staff" else None))
        assert (await env.admin.get("/v1/outbox/1", headers=h)).status_code == 403
