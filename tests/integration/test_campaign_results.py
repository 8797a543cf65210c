"""`GET /v1/campaigns/{id}/results` on PostgreSQL: message counts, interactions, redemptions and
revenue through the real pipeline, and the uplift arithmetic on decisions and orders."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from geo_engine.decision.rules import bucket
from tests.integration.test_campaigns_api import campaign
from tests.integration.test_redemptions import open_services, sent_code, setup_store, walk_in

CUSTOMERS = [f"cust{i}" for i in range(8)]


def purchase(who: str, order: str, ts: float, amount: float = 50.0) -> dict[str, Any]:
    props = {"order_id": order, "amount": amount, "currency": "EUR"}
    items = [{"category": "shoes", "quantity": 1, "price": amount}]
    return {
        "customer_id": who,
        "type": "purchase",
        "ts": ts,
        "channel": "store",
        "properties": props | {"items": items},
    }


async def test_results_through_the_pipeline(settings_factory, clean_pool) -> None:  # type: ignore[no-untyped-def]
    # 10 % global holdout and a 15 % control group: cust1 is held out, cust2 and cust7 are
    # the campaign's control, the five others are sent the offer
    assert [c for c in CUSTOMERS if bucket(c) < 10] == ["cust1"]
    assert [c for c in CUSTOMERS if bucket(c) >= 10 and bucket(f"c1:{c}") < 15] == [
        "cust2",
        "cust7",
    ]
    async with open_services(settings_factory, decision_holdout_pct=10.0) as (c, svc):
        await setup_store(c, CUSTOMERS, control_pct=15)
        for who in CUSTOMERS:
            await walk_in(c, who)
        outcomes = await svc.pool.fetch("SELECT customer_id, outcome FROM decisions ORDER BY 1")
        assert {r["customer_id"]: r["outcome"] for r in outcomes} == {
            "cust0": "send",
            "cust1": "holdout",
            "cust2": "control",
            "cust3": "send",
            "cust4": "send",
            "cust5": "send",
            "cust6": "send",
            "cust7": "control",
        }
        now = time.time()
        rows = [purchase("cust0", "a1", now - 60), purchase("cust2", "b1", now - 60)]
        r = await c.post("/v1/events?wait=true", json={"events": rows})
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
        _, code = await sent_code(svc, "cust0")
        r = await c.post("/v1/redemptions", json={"code": code, "store_id": "opera", "amount": 30})
        assert r.status_code == 201, r.text
        mid, _ = await sent_code(svc, "cust3")
        click = {"message_id": mid, "customer_id": "cust3", "kind": "clicked", "ts": now}
        r = await c.post("/v1/interactions", json={"items": [click]})
        assert r.json()["accepted"] == 1, r.text

        r = await c.get("/v1/campaigns/c1/results")
        assert r.status_code == 200, r.text
        out = r.json()
        delivered = out["totals"].pop("delivered")
        assert delivered in (0, None)  # 0 when delivery receipts are tracked (migration 008)
        assert out["totals"] == {
            "messages": 5,
            "sent": 0,
            "failed": 0,
            "expired": 0,
            "pending": 5,  # no relay ran
            "opened": 1,  # the click implies it
            "clicked": 1,
            "codes_issued": 5,
            "redeemed": 1,
            "revenue": 30.0,
        }
        assert list(out["by_channel"]) == ["push"]
        assert out["by_channel"]["push"]["redeemed"] == 1
        assert out["groups"] == {
            "treated": {"decisions": 5, "customers": 5, "converters": 1, "rate": 0.2},
            "control": {"decisions": 2, "customers": 2, "converters": 1, "rate": 0.5},
            "holdout": {"decisions": 1, "customers": 1, "converters": 0, "rate": 0.0},
        }
        assert out["uplift_vs_control"]["absolute"] == pytest.approx(-0.3)
        assert out["uplift_vs_control"]["relative"] == pytest.approx(-0.6)
        assert out["uplift_vs_holdout"]["absolute"] == pytest.approx(0.2)
        assert out["uplift_vs_holdout"]["relative"] is None  # holdout rate 0: no ratio
        assert out["attribution_days"] == 7 and out["since"] is None


D = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def _decisions(
    pool: asyncpg.Pool, campaign_id: str, outcome: str, who: list[str], at: datetime = D
) -> None:
    await pool.executemany(
        "INSERT INTO decisions (customer_id, trigger_kind, trigger_name, trigger_instance, ts,"
        " outcome, campaign_id, traces) VALUES ($1, 'presence', 'enter', $2, $3, $4, $5, '[]')",
        [(c, f"pe:{c}:{at.timestamp()}", at, outcome, campaign_id) for c in who],
    )


async def _orders(pool: asyncpg.Pool, rows: list[tuple[str, datetime, bool]]) -> None:
    await pool.executemany(
        "INSERT INTO orders (customer_id, order_id, ts, amount, currency, cancelled_at)"
        " VALUES ($1, $2, $3, 10, 'EUR', $4)",
        [
            (c, f"ord-{i}", ts, ts if cancelled else None)
            for i, (c, ts, cancelled) in enumerate(rows)
        ],
    )


async def test_uplift_arithmetic(client: httpx.AsyncClient, services: Any) -> None:
    from tests.integration.test_campaigns_api import offer

    assert (await client.post("/v1/offers", json=offer())).status_code == 201
    for cid in ("c1", "c2"):
        assert (await client.post("/v1/campaigns", json=campaign(cid))).status_code == 201
    pool = services.pool
    treated = [f"t{i}" for i in range(40)]
    control = [f"k{i}" for i in range(20)]
    holdout = [f"h{i}" for i in range(10)]
    await _decisions(pool, "c1", "send", treated[:30])
    await _decisions(pool, "c1", "held", treated[30:])
    await _decisions(pool, "c1", "send", ["t0"], D + timedelta(days=2))  # twice: one customer
    await _decisions(pool, "c1", "control", control)
    await _decisions(pool, "c1", "holdout", holdout)
    await _decisions(pool, "c1", "none", ["n0"])  # not in any group
    await _decisions(pool, "c2", "control", ["x0", "x1"])  # another campaign's
    day = timedelta(days=1)
    await _orders(
        pool,
        [(t, D + day, False) for t in treated[:12]]
        + [(k, D + day, False) for k in control[:4]]
        + [("h0", D + day, False), ("n0", D + day, False), ("x0", D + day, False)]
        + [("t12", D + 8 * day, False)]  # after 7 days, within 10
        + [("t13", D - day, False)]  # before the decision
        + [("t14", D + day, True)],  # cancelled
    )
    r = await client.get("/v1/campaigns/c1/results")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["groups"] == {
        "treated": {"decisions": 41, "customers": 40, "converters": 12, "rate": 0.3},
        "control": {"decisions": 20, "customers": 20, "converters": 4, "rate": 0.2},
        "holdout": {"decisions": 10, "customers": 10, "converters": 1, "rate": 0.1},
    }
    vs_c = out["uplift_vs_control"]
    assert vs_c["absolute"] == pytest.approx(0.1)
    assert vs_c["relative"] == pytest.approx(0.5)
    # sqrt(.3 * .7 / 40 + .2 * .8 / 20) = 0.11511; pooled 16/60: z = 0.8257
    assert (vs_c["ci95_low"], vs_c["ci95_high"]) == (
        pytest.approx(-0.125609, abs=1e-5),
        pytest.approx(0.325609, abs=1e-5),
    )
    assert vs_c["p_value"] == pytest.approx(0.408961, abs=1e-5)
    vs_h = out["uplift_vs_holdout"]
    assert (vs_h["absolute"], vs_h["relative"]) == (pytest.approx(0.2), pytest.approx(2.0))
    assert vs_h["ci95_low"] == pytest.approx(-0.033967, abs=1e-5)
    assert out["totals"]["messages"] == 0 and out["by_channel"] == {}

    r = await client.get("/v1/campaigns/c1/results", params={"attribution_days": 10})
    assert r.json()["groups"]["treated"]["converters"] == 13  # t12's order now counts
    # only t0's second decision (after its order): control and holdout empty, uplift null
    since = (D + timedelta(hours=12)).isoformat()
    r = await client.get("/v1/campaigns/c1/results", params={"since": since})
    out = r.json()
    assert out["groups"]["treated"] == {
        "decisions": 1,
        "customers": 1,
        "converters": 0,
        "rate": 0.0,
    }
    assert out["groups"]["control"]["rate"] is None
    assert set(out["uplift_vs_control"].values()) == {None}
    assert not math.isnan(out["groups"]["treated"]["rate"])


async def test_results_refusals(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/campaigns/nope/results")
    assert (r.status_code, r.json()["errors"][0]["field"]) == (404, "campaign_id")
    from tests.integration.test_campaigns_api import offer

    assert (await client.post("/v1/offers", json=offer())).status_code == 201
    assert (await client.post("/v1/campaigns", json=campaign())).status_code == 201
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"attribution_days": 0}, "attribution_days"),
    ):
        r = await client.get("/v1/campaigns/c1/results", params=params)
        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, field), r.text
    r = await client.get("/v1/campaigns/c1/results", params={"since": "2026-03-01T00:00:00"})
    assert r.status_code == 200 and r.json()["since"] == "2026-03-01T00:00:00Z"
    assert r.json()["groups"]["treated"]["customers"] == 0
