"""Redemption codes end to end on PostgreSQL: a ping makes a decision whose outbox row gets its
code in the same commit; the till redeems it once (staff key of the store), race-safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.composition import Services
from adapters.db import outcomes
from adapters.db.outcomes import ALPHABET, normalize_code
from tests.helpers import LAT0, LON0, offset, open_services, ping, square_feature
from tests.integration.test_beacons import _as, _key
from tests.integration.test_campaigns_api import campaign, offer

T0 = time.time() - 1800.0
GRANTED = {"status": "granted", "at": "2026-01-05T09:00:00Z", "source": "app"}


async def setup_store(c: httpx.AsyncClient, customers: list[str], **camp: Any) -> None:
    """Stores `opera` (where the offer is valid) and `gare`; customers with push consent."""
    for store, north in (("opera", 0.0), ("gare", 2000.0)):
        lat, lon = offset(LAT0, LON0, north, 0)
        r = await c.post("/v1/geofences", json=square_feature(store, lat, lon, store_id=store))
        assert r.status_code == 201, r.text
    for who in customers:
        r = await c.put(f"/v1/customers/{who}", json={"consents": {"push": GRANTED}})
        assert r.status_code == 200, r.text
    assert (await c.post("/v1/offers", json=offer(store_ids=["opera"]))).status_code == 201
    r = await c.post("/v1/campaigns", json=campaign(**camp))
    assert r.status_code == 201, r.text


async def walk_in(c: httpx.AsyncClient, who: str, t: float = T0) -> None:
    far = offset(LAT0, LON0, 400, 0)
    r = await c.post(
        "/v1/pings?wait=true", json={"pings": [ping(who, *far, t), ping(who, LAT0, LON0, t + 60)]}
    )
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json()["events"]] == ["enter"], r.text


async def sent_code(svc: Services, who: str) -> tuple[int, str]:
    row = await svc.pool.fetchrow(
        "SELECT id, payload FROM outbox WHERE customer_id = $1 ORDER BY id DESC LIMIT 1", who
    )
    assert row is not None, f"no offer sent to {who}"
    return int(row["id"]), str(row["payload"]["code"])


@pytest.fixture
async def loop_client(
    clean_pool: Any, settings_factory: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    async with open_services(settings_factory) as got:
        yield got


def test_codes_normalised_as_a_cashier_types_them() -> None:
    assert normalize_code("ab12-cd34") == "AB12CD34"
    assert normalize_code(" ab12 cd34 ") == "AB12CD34"
    assert normalize_code("oIl0-aaaa") == "0110AAAA"  # Crockford: O is 0, I and L are 1
    assert normalize_code("AB12CD3") is None  # too short
    assert normalize_code("AB12CD3U") is None  # U is not in the alphabet
    codes = {outcomes.new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(x) == 8 and set(x) <= set(ALPHABET) for x in codes)


async def test_sent_offer_has_a_code_redeemed_once(loop_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = loop_client
    await setup_store(c, ["alice"])
    await walk_in(c, "alice")
    message_id, code = await sent_code(svc, "alice")
    assert normalize_code(code) == code
    rc = await svc.pool.fetchrow("SELECT * FROM redemption_codes WHERE code = $1", code)
    ob = await svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", message_id)
    assert (rc["outbox_id"], rc["customer_id"], rc["campaign_id"], rc["offer_id"]) == (
        message_id,
        "alice",
        "c1",
        "o1",
    )
    assert rc["store_ids"] == ["opera"]
    assert rc["expires_at"] == ob["send_after"] + timedelta(days=7)  # the default grace
    staff = _as(await _key(c, "staff", ["opera"]))
    typed = f"{code[:4].lower()}-{code[4:]}"  # as a cashier types it
    r = await c.post(
        "/v1/redemptions", headers=staff, json={"code": typed, "store_id": "opera", "amount": 42.5}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("code", "campaign_id", "offer_id", "store_id", "amount")} == {
        "code": code,
        "campaign_id": "c1",
        "offer_id": "o1",
        "store_id": "opera",
        "amount": 42.5,
    }
    assert body["message_id"] == message_id
    assert abs(datetime.fromisoformat(body["redeemed_at"]).timestamp() - time.time()) < 60
    again = await c.post("/v1/redemptions", headers=staff, json={"code": code, "store_id": "opera"})
    assert again.status_code == 409, again.text
    assert "already redeemed in this store at" in again.json()["errors"][0]["reason"]
    elsewhere = await c.post("/v1/redemptions", json={"code": code, "store_id": "gare"})
    assert elsewhere.status_code == 409
    assert "in this store" not in elsewhere.json()["detail"]  # another store's till: when only
    got = await svc.pool.fetchrow("SELECT * FROM redemption_codes WHERE code = $1", code)
    assert (got["redeemed_store_id"], float(got["amount"])) == ("opera", 42.5)
    assert got["redeemed_by"].startswith("key_")


async def test_refusals_name_the_reason(settings_factory, clean_pool) -> None:  # type: ignore[no-untyped-def]
    async with open_services(settings_factory, redemption_valid_days=0.01) as (c, svc):
        await setup_store(c, ["alice"])
        await walk_in(c, "alice")
        _, code = await sent_code(svc, "alice")
        sent_at = await svc.pool.fetchval("SELECT send_after FROM outbox")
        staff_gare = _as(await _key(c, "staff", ["gare"]))

        async def redeem(body: dict[str, Any], headers: Any = None) -> tuple[int, str]:
            r = await c.post("/v1/redemptions", json=body, headers=headers)
            errors = r.json().get("errors") or [{"field": None}]
            return r.status_code, errors[0]["field"]

        before = (sent_at - timedelta(hours=1)).isoformat()
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await redeem({"code": "ZZZZ-ZZZZ", "store_id": "opera"}) == (404, "code")
        assert await redeem({"code": "nonsense!", "store_id": "opera"}) == (404, "code")
        assert await redeem({"code": code, "store_id": "gare"}) == (422, "store_id")
        assert await redeem({"code": code, "store_id": "nowhere"}) == (422, "store_id")
        assert await redeem({"code": code, "store_id": "opera"}) == (410, "code")  # 14 min
        assert await redeem({"code": code, "store_id": "opera", "ts": before}) == (422, "ts")
        assert await redeem({"code": code, "store_id": "opera", "ts": future}) == (422, "ts")
        assert await redeem({"code": code, "store_id": "opera", "amount": -1}) == (422, "amount")
        assert await redeem({"code": code, "store_id": "opera"}, staff_gare) == (403, "store_id")
        ingest = _as(await _key(c, "ingest"))
        assert (await redeem({"code": code, "store_id": "opera"}, ingest))[0] == 403
        assert await svc.pool.fetchval("SELECT count(redeemed_at) FROM redemption_codes") == 0
        # within the grace, an offline till's earlier timestamp is kept
        ok = (sent_at + timedelta(minutes=5)).isoformat()
        r = await c.post("/v1/redemptions", json={"code": code, "store_id": "opera", "ts": ok})
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["redeemed_at"]) == sent_at + timedelta(minutes=5)
        assert r.json()["amount"] is None


async def test_two_tills_at_once_exactly_one_wins(loop_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = loop_client
    await setup_store(c, ["alice"])
    await walk_in(c, "alice")
    _, code = await sent_code(svc, "alice")
    staff = _as(await _key(c, "staff", ["opera"]))
    body = {"code": code, "store_id": "opera", "amount": 10}
    rs = await asyncio.gather(
        *(c.post("/v1/redemptions", json=body, headers=staff) for _ in range(8))
    )
    assert sorted(r.status_code for r in rs) == [201] + [409] * 7, [r.text for r in rs]
    assert await svc.pool.fetchval("SELECT count(redeemed_at) FROM redemption_codes") == 1


@pytest.fixture
def colliding_codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every delivery first draws the same code: the second must get a fresh one."""
    import adapters.services.decisions as decisions

    fresh = iter(["FRESH000", "FRESH001"])
    monkeypatch.setattr(decisions, "new_code", lambda: "SAME0000")
    monkeypatch.setattr(outcomes, "new_code", lambda: next(fresh))
    yield


async def test_a_taken_code_is_replaced_not_fatal(loop_client, colliding_codes) -> None:  # type: ignore[no-untyped-def]
    c, svc = loop_client
    await setup_store(c, ["alice", "bob"], channels=["sms"])
    for who in ("alice", "bob"):
        r = await c.put(f"/v1/customers/{who}/consents", json={"sms": GRANTED})
        assert r.status_code == 200, r.text
    await walk_in(c, "alice")
    await walk_in(c, "bob")
    assert (await sent_code(svc, "alice"))[1] == "SAME0000"
    bob_id, bob_code = await sent_code(svc, "bob")
    assert bob_code == "FRESH000"
    text = await svc.pool.fetchval(
        "SELECT payload->'sms'->>'text' FROM outbox WHERE id = $1", bob_id
    )
    assert "FRESH000" in text and "SAME0000" not in text  # the SMS carries the stored code
    codes = await svc.pool.fetch("SELECT code, customer_id FROM redemption_codes ORDER BY 1")
    assert [(r["code"], r["customer_id"]) for r in codes] == [
        ("FRESH000", "bob"),
        ("SAME0000", "alice"),
    ]
