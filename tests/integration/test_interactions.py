"""Push opens and clicks the app reports (`POST /v1/interactions`, ingest key) on PostgreSQL:
per-row validation, a click implies an open, duplicates counted once; and the push the app
receives carries the `message_id` it echoes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.composition import Services
from adapters.delivery.gateways.base import Message
from adapters.delivery.gateways.fcm import FcmGateway
from tests.integration.test_beacons import _as, _key
from tests.integration.test_redemptions import open_services, sent_code, setup_store, walk_in


@pytest.fixture
async def sent(
    clean_pool: Any, settings_factory: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Services, int]]:
    """alice was sent an offer through the real pipeline: (client, services, message id)."""
    async with open_services(settings_factory) as (c, svc):
        await setup_store(c, ["alice", "bob"])
        await walk_in(c, "alice")
        message_id, _ = await sent_code(svc, "alice")
        yield c, svc, message_id


def item(message_id: int, kind: str = "opened", **kw: Any) -> dict[str, Any]:
    return {"message_id": message_id, "customer_id": "alice", "kind": kind, "ts": time.time()} | kw


async def stored(svc: Services) -> list[tuple[int, str, str, str]]:
    rows = await svc.pool.fetch(
        "SELECT outbox_id, customer_id, campaign_id, kind FROM interactions ORDER BY kind"
    )
    return [(r["outbox_id"], r["customer_id"], r["campaign_id"], r["kind"]) for r in rows]


async def test_click_implies_open_and_duplicates_count_once(sent) -> None:  # type: ignore[no-untyped-def]
    c, svc, mid = sent
    ingest = _as(await _key(c, "ingest"))
    r = await c.post("/v1/interactions", headers=ingest, json={"items": [item(mid, "clicked")]})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": [], "rejected": []}
    assert await stored(svc) == [(mid, "alice", "c1", "clicked"), (mid, "alice", "c1", "opened")]
    # the app retries, with an ISO time this once: nothing new
    iso = "2026-01-05T09:00:00+01:00"
    r = await c.post(
        "/v1/interactions",
        headers=ingest,
        json={"items": [item(mid, "opened", ts=iso), item(mid, "clicked")]},
    )
    assert r.json()["accepted"] == 0
    assert [d["index"] for d in r.json()["duplicates"]] == [0, 1]
    assert len(await stored(svc)) == 2


async def test_bad_rows_rejected_good_rows_kept(sent) -> None:  # type: ignore[no-untyped-def]
    c, svc, mid = sent
    rows = [
        item(mid, "opened", ts="2026-01-05T09:00:00Z"),  # 0 good
        item(mid, "liked"),  # 1 unknown kind
        item(mid + 1000),  # 2 no such message
        item(mid, customer_id="bob"),  # 3 someone else's message
        item(mid, ts="2026-01-05T09:00:00"),  # 4 no offset
        item(mid, ts=time.time() + 3600),  # 5 future
        {"message_id": mid, "kind": "opened", "ts": 1},  # 6 no customer
        "not an object",  # 7
        item(mid, extra=1),  # 8 unknown field
        item(mid, "opened"),  # 9 the same as 0: a duplicate
    ]
    r = await c.post("/v1/interactions", json={"items": rows})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1
    assert out["duplicates"] == [{"index": 9, "reason": "opened already recorded"}]
    got = {e["index"]: (e["field"], e["status"]) for e in out["rejected"]}
    assert got == {
        1: ("kind", 422),
        2: ("message_id", 404),
        3: ("customer_id", 422),
        4: ("ts", 422),
        5: ("ts", 422),
        6: ("customer_id", 422),
        7: ("item", 422),
        8: ("extra", 422),
    }
    reasons = {e["index"]: e["reason"] for e in out["rejected"]}
    assert reasons[2] == f"no message {mid + 1000}"
    assert "not sent to this customer" in reasons[3]
    ts = await svc.pool.fetchval("SELECT ts FROM interactions WHERE kind = 'opened'")
    assert ts.isoformat() == "2026-01-05T09:00:00+00:00"  # row 0's, not row 9's


async def test_whole_batch_refusals_and_roles(sent) -> None:  # type: ignore[no-untyped-def]
    c, svc, mid = sent
    for body, status, field in (
        ({"items": {"a": 1}}, 422, "items"),
        ([1, 2], 422, "items"),
        ({"items": [item(mid)] * 1001}, 413, "items"),
    ):
        r = await c.post("/v1/interactions", json=body)
        assert (r.status_code, r.json()["errors"][0]["field"]) == (status, field), r.text
    r = await c.post("/v1/interactions", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    staff = _as(await _key(c, "staff", ["opera"]))
    r = await c.post("/v1/interactions", headers=staff, json={"items": [item(mid)]})
    assert r.status_code == 403
    assert await stored(svc) == []


async def test_push_data_carries_the_message_id(sent) -> None:  # type: ignore[no-untyped-def]
    """The FCM message built from the real outbox row: the app echoes `data.message_id`."""
    _, svc, mid = sent
    row = await svc.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", mid)

    async def nothing(*_: Any) -> Any:
        return []

    gw = FcmGateway(project_id="p", token_source=nothing, tokens_of=nothing, remove_token=nothing)
    msg = Message(
        row["id"],
        row["idempotency_key"],
        row["customer_id"],
        row["campaign_id"],
        row["channel"],
        row["payload"],
        1,
        row["expires_at"].timestamp(),
    )
    body = gw.body(msg, "token")
    await gw.aclose()
    assert body is not None and body["message"]["data"]["message_id"] == str(mid)
