"""The backtest replays stored velocity crossings (`velocity_signals`) as the live signal hook
decides them: only the campaign's own (KPI, direction) in [since, until), merged in time order
with presence events, no store (store-scoped offers do not serve them, as live), counted by the
progress bar."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from adapters.db.campaign_reads import REPLAY
from adapters.db.profiles import insert_signals
from adapters.services.backtest import count_events, run_backtest
from geo_engine.decision.triggers import velocity_trigger
from geo_engine.profile.velocity import Crossing
from tests.integration.test_campaigns_api import campaign, offer
from tests.integration.test_decisions import GRANTED, T0, _setup, _walk_in

DAY = 86400.0
NOW = float(int(time.time()))  # whole seconds: `since` falls exactly on a crossing
FALLING_VISITS = [{"type": "velocity", "kpi": "store_visit", "direction": "falling"}]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def crossing(who: str, figure: str, trend: str, as_of: float) -> Crossing:
    prev = "stable" if trend == "falling" else "falling"
    return Crossing(who, figure, prev, trend, 1.0, 4.0, -75.0, as_of, 7)


async def _store(svc: Any, *crossings: Crossing) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        await insert_signals(conn, list(crossings))


async def _customers(c: httpx.AsyncClient, **consents: dict[str, Any]) -> None:
    for who, cons in consents.items():
        r = await c.put(f"/v1/customers/{who}", json={"first_name": who, "consents": cons})
        assert r.status_code == 200, r.text


async def test_counts_the_campaigns_crossings_of_the_range(open_client) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    push, sms = {"push": GRANTED}, {"sms": GRANTED}
    await _customers(c, alice=push, bob=sms, carol={}, erin=push, dave=push)
    assert (await c.post("/v1/offers", json=offer(valid_from=NOW - 30 * DAY))).status_code == 201
    doc = campaign("v1", triggers=FALLING_VISITS, conditions=None, start=NOW - 30 * DAY)
    assert (await c.post("/v1/campaigns", json=doc)).status_code == 201, doc
    since, until = NOW - 4 * DAY, NOW - DAY
    fired = [
        crossing("erin", "store_visit", "falling", since),  # on `since`: in
        crossing("alice", "store_visit", "falling", NOW - 3 * DAY + 0.25),
        crossing("bob", "store_visit", "falling", NOW - 2 * DAY + 0.5),
        crossing("carol", "store_visit", "falling", NOW - 2 * DAY + 60),  # no consent
    ]
    await _store(
        svc,
        *fired,
        crossing("alice", "store_visit", "rising", NOW - 3 * DAY + 10),  # the other trend
        crossing("alice", "page_view", "falling", NOW - 3 * DAY + 20),  # another KPI
        crossing("bob", "interest", "falling", NOW - 2 * DAY),
        crossing("dave", "store_visit", "falling", since - 1),  # before the range
        crossing("dave", "store_visit", "falling", until),  # `until` is out
    )
    body = {"since": _dt(since).isoformat(), "until": _dt(until).isoformat()}
    r = await c.post("/v1/campaigns/v1/backtest", json=body)
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["events_read"], b["events"], b["offers"]) == (4, 4, 3)
    assert b["by_reason"] == {"chosen": 3, "no_consent": 1}
    assert b["by_outcome"] == {"send": 3, "none": 1}
    assert b["by_channel"] == {"push": 2, "sms": 1}
    assert b["by_store"] == {"-": 3}  # a crossing has no store
    paris = ZoneInfo(svc.decisions.cfg.default_timezone)
    days = Counter(datetime.fromtimestamp(x.as_of, paris).date().isoformat() for x in fired[:3])
    assert b["by_day"] == dict(sorted(days.items())) and len(days) == 3
    # the progress bar's count is the rows read, and every row reaches `on_chunk`
    assert await count_events(svc.decisions, svc.campaigns, "v1", _dt(since), _dt(until)) == 4
    seen: list[int] = []
    one = await run_backtest(
        svc.decisions, svc.campaigns, "v1", _dt(since), _dt(until), chunk=1, on_chunk=seen.append
    )
    assert seen == [1, 1, 1, 1] and one.events_read == 4
    whole = await run_backtest(svc.decisions, svc.campaigns, "v1", _dt(since), _dt(until))
    assert one.result == whole.result
    # rising visits: only alice's rising crossing; a presence campaign reads no crossing
    doc = campaign("v2", triggers=[{**FALLING_VISITS[0], "direction": "rising"}], conditions=None)
    assert (await c.post("/v1/campaigns", json={**doc, "start": NOW - 30 * DAY})).status_code == 201
    assert await count_events(svc.decisions, svc.campaigns, "v2", _dt(since), _dt(until)) == 1
    assert (await c.post("/v1/campaigns", json=campaign("p1"))).status_code == 201
    assert await count_events(svc.decisions, svc.campaigns, "p1", _dt(since), _dt(until)) == 0
    assert await svc.pool.fetchval("SELECT count(*) FROM decisions") == 0  # nothing written


async def test_a_crossing_is_decided_as_live_decided_it(open_client) -> None:  # type: ignore[no-untyped-def]
    """Real crossings, live: page views ten days ago only, posted now, make page_view and
    interest fall. Live decides both in the posting transaction; the backtest of each campaign
    over the same range gives the same outcome, reason and channel, and the same trigger."""
    c, svc = open_client
    await _customers(c, hal={"sms": GRANTED})
    assert (await c.post("/v1/offers", json=offer())).status_code == 201
    # an offer for one store only: a crossing has no store, so it serves none, live as replayed
    assert (await c.post("/v1/offers", json=offer("o2", store_ids=["opera"]))).status_code == 201
    interest = [{"type": "velocity", "kpi": "interest", "direction": "falling"}]
    pages = [{"type": "velocity", "kpi": "page_view", "direction": "falling"}]
    for doc in (
        campaign("vi", triggers=interest, conditions=None, channels=["sms"]),
        campaign("vp", triggers=pages, conditions=None, channels=["sms"], offer_ids=["o2"]),
    ):
        assert (await c.post("/v1/campaigns", json=doc)).status_code == 201, doc
    t = time.time()
    back = [
        {"customer_id": "hal", "type": "page_view", "ts": t - 10 * DAY + i * 60, "channel": "web"}
        | {"properties": {"url": f"/p/{i}"}}
        for i in range(6)
    ]
    r = await c.post("/v1/events?wait=true", json={"events": back})
    assert r.status_code == 200, r.text
    signals = r.json()["signals"]
    assert {(s["figure"], s["trend"]) for s in signals} >= {
        ("page_view", "falling"),
        ("interest", "falling"),
    }
    live = (await c.get("/v1/decisions", params={"customer_id": "hal"})).json()["decisions"]
    assert {d["trigger_kind"] for d in live} == {"velocity"} and len(live) == 2
    stored = await svc.pool.fetch("SELECT figure, trend, as_of FROM velocity_signals")
    since, until = _dt(t - 3600), _dt(t + 3600)
    for cid, figure in (("vi", "interest"), ("vp", "page_view")):
        row = next(s for s in stored if s["figure"] == figure)
        want = velocity_trigger("hal", figure, "falling", row["as_of"].timestamp())
        d = next(d for d in live if d["trigger_instance"] == want.instance)
        trace = next(x for x in d["traces"] if x["campaign_id"] == cid)
        run = await run_backtest(svc.decisions, svc.campaigns, cid, since, until)
        res = run.result
        assert (run.events_read, res.events) == (1, 1)
        assert res.by_outcome == {d["outcome"]: 1}
        assert res.by_reason == {trace["result"]: 1}
        assert res.by_channel == ({d["channel"]: 1} if d["channel"] else {})
        assert res.offers == (1 if d["outcome"] in ("send", "held") else 0)
        assert res.by_store == ({"-": 1} if res.offers else {})
    # what live decided, so the comparison above compared something
    outcomes = {d["trigger_instance"].split(":")[1]: d["outcome"] for d in live}
    assert outcomes == {"interest": "send", "page_view": "none"}
    reasons = {x["campaign_id"]: x["result"] for d in live for x in d["traces"]}
    assert reasons == {"vi": "chosen", "vp": "no_valid_offer"}  # o2 serves no crossing


async def test_presence_and_velocity_are_read_in_time_order(open_client) -> None:  # type: ignore[no-untyped-def]
    """One campaign on store enters and falling visits: both kinds are read, merged by time,
    so the first of a customer's triggers wins and the cooldown holds the second."""
    c, svc = open_client
    trig = [{"type": "presence", "event": "enter", "fence_kinds": ["store"]}, *FALLING_VISITS]
    await _setup(c, {"push": GRANTED}, triggers=trig, conditions=None, cooldown_s=DAY)
    await _customers(c, bob={"push": GRANTED})
    await _walk_in(c)  # enters at T0 + 60
    await _walk_in(c, "bob")
    await _store(
        svc,
        crossing("alice", "store_visit", "falling", T0 + 30),  # before her enter: it wins
        crossing("bob", "store_visit", "falling", T0 + 120),  # after his: the enter wins
    )
    since, until = _dt(T0 - 3600), _dt(T0 + 3600)
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(REPLAY, since, until, True, [], ["store_visit:falling"], 100)
    assert [(r["k"], r["customer_id"]) for r in rows] == [
        (2, "alice"),
        (0, "alice"),
        (0, "bob"),
        (2, "bob"),
    ]
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    seen: list[int] = []
    run = await run_backtest(svc.decisions, svc.campaigns, "c1", since, until, on_chunk=seen.append)
    assert run.events_read == sum(seen) == 4
    assert await count_events(svc.decisions, svc.campaigns, "c1", since, until) == 4
    res = run.result
    assert (res.events, res.offers) == (4, 2)
    assert res.by_reason == {"chosen": 2, "cooldown": 2}
    assert res.by_store == {"-": 1, "opera": 1}  # alice's crossing, bob's enter
