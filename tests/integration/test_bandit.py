"""The learned ranking on PostgreSQL: the refresher counts delivered, redeemed and clicked
offers per (campaign, offer) from real outbox, redemption and interaction rows, and a live
decision through the API then picks the offer that redeems better."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from adapters.db.campaigns import PgCampaignRepository
from adapters.services.bandit import read_arms
from geo_engine.decision.bandit import ArmStats
from tests.conftest import ADMIN_KEY
from tests.helpers import ALWAYS_OPEN, square_feature
from tests.integration.test_campaigns_api import campaign, offer
from tests.integration.test_decisions import GRANTED, _walk_in

NOW = time.time()
DAY = timedelta(days=1)


async def outcomes(
    pool: asyncpg.Pool,
    offer_id: str,
    sent: int,
    redeemed: int = 0,
    clicked: int = 0,
    *,
    age: timedelta = DAY,
    status: str = "sent",
    campaign_id: str = "c1",
) -> None:
    """`sent` outbox rows of `offer_id`, the first `redeemed` of them redeemed, the next
    `clicked` clicked (and one redeemed row clicked too: it counts as redeemed only)."""
    at = datetime.now(UTC) - age
    # one transaction: a refresher running meanwhile sees all of these rows or none
    async with pool.acquire() as conn, conn.transaction():
        base = await conn.fetchval("SELECT count(*) FROM outbox")
        for k in range(sent):
            i = base + k
            who = f"past{i}"  # other customers: no pressure on the one walking in
            did = await conn.fetchval(
                "INSERT INTO decisions (customer_id, trigger_kind, trigger_name,"
                " trigger_instance, ts, outcome, campaign_id, offer_id, traces)"
                " VALUES ($1, 'presence', 'enter', $2, $3, 'send', $4, $5, '[]') RETURNING id",
                who,
                f"pe:{i}",
                at,
                campaign_id,
                offer_id,
            )
            oid = await conn.fetchval(
                "INSERT INTO outbox (decision_id, idempotency_key, customer_id, campaign_id,"
                " trigger_instance, offer_id, channel, payload, send_after, expires_at, status,"
                " sent_at) VALUES ($1, $2, $3, $4, $5, $6, 'push', '{}', $7, $8, $9, $10)"
                " RETURNING id",
                did,
                f"{who}|{campaign_id}|pe:{i}",
                who,
                campaign_id,
                f"pe:{i}",
                offer_id,
                at,
                at + DAY,
                status,
                at if status == "sent" else None,
            )
            await conn.execute(
                "INSERT INTO redemption_codes (code, outbox_id, decision_id, customer_id,"
                " campaign_id, offer_id, issued_at, expires_at, redeemed_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                f"CODE{i}",
                oid,
                did,
                who,
                campaign_id,
                offer_id,
                at,
                at + 7 * DAY,
                at + timedelta(hours=2) if k < redeemed else None,
            )
            if k == 0 or redeemed <= k < redeemed + clicked:
                await conn.execute(
                    "INSERT INTO interactions (outbox_id, customer_id, campaign_id, kind, ts)"
                    " VALUES ($1, $2, $3, 'clicked', $4)",
                    oid,
                    who,
                    campaign_id,
                    at + timedelta(hours=1),
                )


async def test_the_refresher_counts_delivered_outcomes_per_arm_in_the_window(
    clean_pool: asyncpg.Pool,
) -> None:
    await outcomes(clean_pool, "o1", 30, redeemed=3, clicked=5)
    await outcomes(clean_pool, "o2", 10, redeemed=0, clicked=2)
    await outcomes(clean_pool, "o2", 4, redeemed=0, campaign_id="c2")
    await outcomes(clean_pool, "o1", 7, redeemed=7, age=40 * DAY)  # before the window
    await outcomes(clean_pool, "o1", 6, status="pending")  # never delivered: not a miss
    await outcomes(clean_pool, "o1", 2, status="dead")
    snap = await read_arms(PgCampaignRepository(clean_pool), NOW - 30 * 86400, NOW)
    assert dict(snap.arms) == {
        ("c1", "o1"): ArmStats(sent=30, redeemed=3, clicked=5),
        ("c1", "o2"): ArmStats(sent=10, redeemed=0, clicked=2),
        ("c2", "o2"): ArmStats(sent=4, redeemed=0, clicked=1),
    }
    assert snap.as_of == NOW


@pytest.mark.parametrize(("ranking", "picked"), [("expected_value", "bad"), ("bandit", "good")])
async def test_a_live_decision_picks_the_offer_that_redeems_better(
    clean_pool: asyncpg.Pool, settings_factory, ranking: str, picked: str
) -> None:  # type: ignore[no-untyped-def]
    """Equal value and category: the static ranking keeps the first listed ('bad'); with the
    bandit on, the outcomes read at start (bad 1/300, good 45/300) make 'good' win, live and in
    a backtest of the same events."""
    from adapters.api.app import create_app
    from adapters.composition import build_services

    await outcomes(clean_pool, "bad", 300, redeemed=1)
    await outcomes(clean_pool, "good", 300, redeemed=45)
    svc = await build_services(
        settings_factory(**ALWAYS_OPEN, decision_ranking=ranking),
        background=False,
    )
    try:
        if ranking == "bandit":
            assert svc.decisions is not None
            assert svc.decisions.arms.arms[("c1", "good")] == ArmStats(300, 45, 0)
        transport = httpx.ASGITransport(app=create_app(services=svc))
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as c:
            r = await c.post("/v1/geofences", json=square_feature("opera", store_id="opera"))
            assert r.status_code == 201, r.text
            r = await c.put("/v1/customers/alice", json={"consents": {"push": GRANTED}})
            assert r.status_code == 200, r.text
            for oid in ("bad", "good"):
                assert (await c.post("/v1/offers", json=offer(oid))).status_code == 201
            r = await c.post("/v1/campaigns", json=campaign(offer_ids=["bad", "good"]))
            assert r.status_code == 201, r.text
            assert [e["type"] for e in await _walk_in(c)] == ["enter"]
            r = await c.get("/v1/decisions", params={"customer_id": "alice"})
            ds = r.json()["decisions"]
            assert [(d["outcome"], d["offer_id"]) for d in ds] == [("send", picked)]
            # the backtest ranks as live did: the same draw (seeded by the trigger), the same
            # offer
            span = {
                "since": (datetime.now(UTC) - DAY).isoformat(),
                "until": (datetime.now(UTC) + DAY).isoformat(),
            }
            r = await c.post("/v1/campaigns/c1/backtest", json=span)
            assert r.status_code == 200, r.text
            assert (r.json()["offers"], r.json()["by_offer"]) == (1, {picked: 1})
    finally:
        await svc.close()


async def test_serve_refreshes_the_snapshot_it_decides_with(
    clean_pool: asyncpg.Pool, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    """The periodic refresh swaps in a new snapshot: outcomes measured after the start count."""
    import asyncio
    import contextlib

    from adapters.composition import build_services
    from adapters.services.bandit import BanditRefresher

    svc = await build_services(settings_factory(decision_ranking="bandit"), background=False)
    try:
        assert svc.decisions is not None
        before = svc.decisions.arms
        assert dict(before.arms) == {}
        refresher = BanditRefresher(
            svc.campaigns, svc.decisions, window_s=86400 * 30, interval_s=0.05
        )
        task = asyncio.create_task(refresher.run_forever())
        await outcomes(clean_pool, "o1", 5, redeemed=2)
        for _ in range(100):
            if svc.decisions.arms.arms:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert svc.decisions.arms.arms == {("c1", "o1"): ArmStats(5, 2, 0)}
        assert dict(before.arms) == {}  # the old snapshot was replaced, not mutated
    finally:
        await svc.close()
