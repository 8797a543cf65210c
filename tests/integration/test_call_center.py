"""Call-center campaigns on PostgreSQL: the winning decision writes a task (no outbox row) in the
same commit as the event that fired it; the call center lists and closes tasks over the API."""

from __future__ import annotations

import time
from typing import Any

import httpx

from adapters.composition import Services
from tests.integration.test_campaigns_api import campaign, offer
from tests.integration.test_event_triggers import GRANTED

CHURN_CALL = {
    "id": "churn-call",
    "name": "Churn: call before they leave",
    "action": "call_center_task",
    "priority": 50,
    "triggers": [
        {"type": "event", "event": "info_request"},
        {"type": "velocity", "kpi": "store_visit", "direction": "falling"},
    ],
    "offer_ids": ["o1"],
    "cooldown_s": 0,
    "conditions": None,
}


async def _info_request(c: httpx.AsyncClient, who: str, eid: str) -> None:
    row = {"customer_id": who, "type": "info_request", "ts": time.time(), "channel": "web",
           "event_id": eid, "properties": {"topic": "terms of contract"}}  # fmt: skip
    r = await c.post("/v1/events?wait=true", json={"events": [row]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


async def _setup(c: httpx.AsyncClient, **kw: Any) -> None:
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    r = await c.post("/v1/campaigns", json=campaign(**{**CHURN_CALL, **kw}))
    assert r.status_code == 201, r.text
    assert r.json()["action"] == "call_center_task"


async def _tasks(c: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await c.get("/v1/call-center-tasks", params=params)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["tasks"]
    return out


async def test_info_request_makes_a_task_not_a_message(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c)
    # no message consent at all: a call needs none (it is not an SMS or a push)
    await c.put("/v1/customers/alice", json={"first_name": "Léa"})
    await _info_request(c, "alice", "ir-1")
    d = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert [(x["trigger_kind"], x["outcome"], x["channel"], x["outbox_status"]) for x in d] == [
        ("event", "send", "call_center", None)
    ]
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0
    tasks = await _tasks(c, status="open", campaign_id="churn-call")
    assert len(tasks) == 1
    t = tasks[0]
    assert (t["customer_id"], t["decision_id"], t["priority"], t["offer_id"]) == (
        "alice",
        d[0]["id"],
        50,
        "o1",
    )
    assert t["reason"].startswith("event info_request; segment ")
    assert t["trigger_instance"] == "ev:ir-1" and t["done_at"] is None
    # a second request the same day: the call channel's daily cap (a call counts as pressure)
    await _info_request(c, "alice", "ir-2")
    d = (await c.get("/v1/decisions", params={"customer_id": "alice"})).json()["decisions"]
    assert d[-1]["traces"][0]["result"] == "channel_cap"
    assert len(await _tasks(c)) == 1
    # closing it
    r = await c.post(f"/v1/call-center-tasks/{t['id']}/done", json={"outcome": "retained",
                     "note": "moving house, kept the contract"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("done", "retained")
    assert r.json()["done_at"] is not None and r.json()["done_by"]
    r = await c.post(f"/v1/call-center-tasks/{t['id']}/done", json={"outcome": "reached"})
    assert r.status_code == 409, r.text
    assert await _tasks(c, status="open") == []
    assert len(await _tasks(c, status="done")) == 1


async def test_objection_blocks_the_call_and_closing_errors(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c)
    denied = {"status": "denied", "at": "2026-01-05T09:00:00Z", "source": "app"}
    await c.put("/v1/customers/bob", json={"consents": {"direct_marketing": denied}})
    await _info_request(c, "bob", "ir-b")
    d = (await c.get("/v1/decisions", params={"customer_id": "bob"})).json()["decisions"]
    assert [(x["outcome"], x["traces"][0]["result"]) for x in d] == [("none", "objection")]
    assert await _tasks(c) == []
    r = await c.post("/v1/call-center-tasks/999/done", json={"outcome": "reached"})
    assert r.status_code == 404, r.text
    r = await c.post("/v1/call-center-tasks/1/done", json={"outcome": "maybe"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "outcome", r.text
    r = await c.get("/v1/call-center-tasks", params={"status": "lost"})
    assert r.status_code == 422, r.text
    # a cancelled task: no longer counted, and closed
    await c.put("/v1/customers/carol", json={"consents": {"sms": GRANTED}})
    await _info_request(c, "carol", "ir-c")
    (t,) = await _tasks(c, customer_id="carol")
    r = await c.post(f"/v1/call-center-tasks/{t['id']}/cancel", json={"note": "duplicate"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_call_center_action_validated(open_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    r = await c.post("/v1/campaigns", json=campaign(action="fax"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action", r.text
    esc = {"after_s": 3600, "channels": ["sms"]}
    r = await c.post("/v1/campaigns", json=campaign(**CHURN_CALL, escalation=esc))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "escalation", r.text


async def test_replayed_trigger_one_task(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c)
    await _info_request(c, "dan", "ir-d")
    assert svc.decisions is not None
    s: Services = svc
    # the same trigger decided again (a replay): the task is unique per trigger instance
    row = await s.pool.fetchrow("SELECT * FROM call_center_tasks")
    from adapters.db import tasks

    again = tasks.NewTask(
        "dan", "churn-call", "o1", row["decision_id"], "ev:ir-d", "x", 0, time.time(), time.time()
    )
    async with s.pool.acquire() as conn:
        assert await tasks.create(conn, again) is None
    assert await s.pool.fetchval("SELECT count(*) FROM call_center_tasks") == 1
