"""Campaigns in the console: one made in the form (its condition first refused by the API, the
reason at the field) fires on the next walk-in, its decisions read with each campaign's reason,
paused and resumed; a backtest shows its progress then its table and chart; the results page
draws the messages per channel and the uplift with its 95 % interval."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
from playwright.sync_api import expect

from geo_engine.decision.rules import bucket
from tests.browser.conftest import Console, run_async, shot, sign_in, unique
from tests.browser.geo import square

GRANTED = {"status": "granted", "at": "2026-01-05T09:00:00Z", "source": "app"}


def _store_with_offer(console: Console, lon: float, lat: float) -> tuple[str, str, str]:
    store = unique("camp")
    fence = square(f"{store}-f", lon, lat, 50, "store", store, "Grands Boulevards")
    assert console.admin.post("/v1/geofences", json=fence).status_code == 201
    offer = unique("o")
    now = time.time()
    body = {
        "id": offer,
        "name": "-15 % aujourd'hui",
        "content": {"push": {"title": "-15 % ici", "body": "À {store_name} : {code}"}},
        "valid_from": now - 86400,
        "valid_until": now + 30 * 86400,
        "store_ids": [store],
        "value": 15.0,
    }
    r = console.admin.post("/v1/offers", json=body)
    assert r.status_code == 201, r.text
    return store, fence["id"], offer


def _walk_in(console: Console, who: str, lon: float, lat: float) -> None:
    r = console.admin.put(f"/v1/customers/{who}", json={"consents": {"push": GRANTED}})
    assert r.status_code in (200, 202), r.text
    now = time.time()
    pings = [
        {"customer_id": who, "lat": lat + 0.004, "lon": lon, "accuracy_m": 5, "ts": now - 120},
        {"customer_id": who, "lat": lat, "lon": lon, "accuracy_m": 5, "ts": now - 60},
    ]
    r = console.admin.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json()["events"]] == ["enter"], r.text


def test_a_campaign_made_in_the_form_fires_on_the_next_walk_in(page: Any, console: Console) -> None:
    lon, lat = 2.3450, 48.8710
    _, fence_id, offer = _store_with_offer(console, lon, lat)
    cid = unique("c")
    sign_in(page, console, at="campaigns")
    page.click("#campaign-new")
    form = page.locator("#campaign-form")
    form.locator('input[name="id"]').fill(cid)
    form.locator('input[name="name"]').fill("Bienvenue en magasin")
    form.locator('select[name="status"]').select_option("live")
    form.locator('input[name="triggers.0.fence_ids"]').fill(fence_id)
    # a second trigger, its type changed, then removed: the first keeps what was typed
    form.locator("#add-trigger").click()
    form.locator('select[name="triggers.1.type"]').select_option("velocity")
    expect(form.locator('select[name="triggers.1.kpi"]')).to_be_visible()
    form.locator('fieldset[data-field="triggers.1"] legend button').click()
    expect(form.locator("fieldset.trigger")).to_have_count(1)
    expect(form.locator('input[name="triggers.0.fence_ids"]')).to_have_value(fence_id)
    form.locator(f'input[name="offer_ids"][value="{offer}"]').check()
    form.locator('input[name="channels"][value="sms"]').uncheck()
    # a number compared with a segment: the API's type check names the path, shown at the field
    bad = '{"all": [{"field": "profile.segment", "op": "gt", "value": 3}]}'
    form.locator('textarea[name="conditions"]').fill(bad)
    form.locator("#campaign-save").click()
    error = form.locator('.field[data-field="conditions"] > .field-error')
    expect(error).to_contain_text("conditions.all.0.op")
    expect(error).to_contain_text("does not apply")
    assert console.admin.get(f"/v1/campaigns/{cid}").status_code == 404
    shot(page, console, "campaign-form", full_page=True)
    good = '{"all": [{"field": "context.local_hour", "op": "between", "value": [0, 24]}]}'
    form.locator('textarea[name="conditions"]').fill(good)
    form.locator("#campaign-save").click()
    row = page.locator(f'tr[data-campaign="{cid}"]')
    expect(row.locator(".badge")).to_have_class("badge status-live")

    # someone outside the global holdout and any control up to 30 % (a random id fell in the
    # 5 % holdout now and then: the decision is then rightly no send)
    (who,) = _groups(cid, 1, 0, 0)[0]
    _walk_in(console, who, lon, lat)
    decisions = console.admin.get("/v1/decisions", params={"customer_id": who}).json()
    (d,) = decisions["decisions"]
    assert (d["outcome"], d["campaign_id"], d["offer_id"], d["channel"]) == (
        "send",
        cid,
        offer,
        "push",
    ), d["traces"]

    # the decision as the console shows it: each campaign considered, with its reason
    page.goto(f"{console.url}/console/#/decisions/{who}")
    card = page.locator("section.decision")
    expect(card).to_have_count(1)
    expect(card.locator("tr.trace.result-chosen td").first).to_have_text(cid)
    shot(page, console, "decisions")

    # pause, then resume, from the list
    page.click("#nav-campaigns")
    row.locator("button.pause").click()
    expect(row.locator(".badge")).to_have_class("badge status-paused")
    assert console.admin.get(f"/v1/campaigns/{cid}").json()["status"] == "paused"
    row.locator("button.resume").click()
    expect(row.locator(".badge")).to_have_class("badge status-live")


async def _code_of(database_url: str, who: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        payload = await conn.fetchval(
            "SELECT payload FROM outbox WHERE customer_id = $1 ORDER BY id DESC LIMIT 1", who
        )
    finally:
        await conn.close()
    assert payload is not None
    doc = payload if isinstance(payload, dict) else json.loads(payload)
    return str(doc["code"])


def _groups(cid: str, *sizes: int) -> list[list[str]]:
    """Customers who land in the treated group, the campaign's 30 % control and the global
    5 % holdout (the engine's own stable buckets): each group has someone, so the uplift
    against each is drawn (an empty group has no rate, and the chart says n/a)."""
    found: list[list[str]] = [[], [], []]
    while any(len(g) < n for g, n in zip(found, sizes, strict=True)):
        who = unique("shopper")
        group = 2 if bucket(who) < 5.0 else 1 if bucket(f"{cid}:{who}") < 30.0 else 0
        if len(found[group]) < sizes[group]:
            found[group].append(who)
    return found


def test_backtest_and_results_are_drawn(page: Any, console: Console) -> None:
    lon, lat = 2.3550, 48.8650
    store, fence_id, offer = _store_with_offer(console, lon, lat)
    cid = unique("r")
    now = time.time()
    campaign = {
        "id": cid,
        "name": "Soldes d'hiver",
        "status": "live",
        "start": now - 86400,
        "end": now + 30 * 86400,
        "triggers": [{"type": "presence", "event": "enter", "fence_ids": [fence_id]}],
        "offer_ids": [offer],
        "channels": ["push"],
        "control_pct": 30,
    }
    assert console.admin.post("/v1/campaigns", json=campaign).status_code == 201
    treated, control, holdout = _groups(cid, 8, 3, 3)
    customers = treated + control + holdout
    for who in customers:
        _walk_in(console, who, lon, lat)
    decided = console.admin.get("/v1/decisions", params={"campaign_id": cid}).json()
    assert any(d["outcome"] == "send" for d in decided["decisions"]), decided
    # what the app and the tills report: opens and clicks, a redemption, purchases
    outbox = console.admin.get("/v1/outbox").json()["messages"]
    mine = [m for m in outbox if m["campaign_id"] == cid]
    items = [
        {"message_id": m["id"], "customer_id": m["customer_id"], "kind": k, "ts": now}
        for m, k in zip(mine, ["clicked", "opened", "opened", "clicked"], strict=False)
    ]
    assert console.admin.post("/v1/interactions", json={"items": items}).status_code == 200
    code = run_async(_code_of(console.database_url, mine[0]["customer_id"]))
    r = console.admin.post("/v1/redemptions", json={"code": code, "store_id": store, "amount": 42})
    assert r.status_code == 201, r.text
    buyers = treated[:5] + control[:1] + holdout[:1]
    events = [
        {
            "customer_id": who,
            "type": "purchase",
            "ts": now - 30,
            "channel": "store",
            "properties": {
                "order_id": unique("ord"),
                "amount": 60.0,
                "currency": "EUR",
                "items": [{"category": "shoes", "quantity": 1, "price": 60.0}],
            },
        }
        for who in buyers
    ]
    r = console.admin.post("/v1/events?wait=true", json={"events": events})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text

    sign_in(page, console, at="campaigns")
    row = page.locator(f'tr[data-campaign="{cid}"]')
    row.locator("button.backtest").click()
    page.click("#backtest-run")
    expect(page.locator(".backtest-result")).to_be_visible()
    expect(page.locator(".backtest-result svg.bar-chart rect.bar")).not_to_have_count(0)
    shot(page, console, "campaigns", full_page=True)

    row.locator("a.button").click()  # to its results
    expect(page.locator("#results-table tbody tr")).to_have_count(2)  # push and the total
    chart = page.locator("svg.interval-chart")
    expect(chart.locator("circle.estimate")).to_have_count(2)
    expect(page.locator("svg.bar-chart rect.bar.sent")).to_have_count(1)
    results = console.admin.get(f"/v1/campaigns/{cid}/results").json()
    push = page.locator("#results-table tbody tr").first.locator("td")
    expect(push.nth(1)).to_have_text(str(results["by_channel"]["push"]["messages"]))
    shot(page, console, "results", full_page=True)
