"""`geo-engine backtest` against a real database: the same replay as the API route (one shared
function), streamed in chunks, with presence and behavioural events, a table or JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from adapters.services.backtest import run_backtest
from tests.integration.test_campaigns_api import campaign, offer
from tests.integration.test_decisions import GRANTED, T0, _setup, _walk_in

SINCE, UNTIL = "2020-01-01T00:00:00Z", "2100-01-01T00:00:00"  # the second one naive: UTC
OPEN_ALL_DAY = {
    "GEO_ENGINE_DECISION_HOURS": "[0, 24]",
    "GEO_ENGINE_DECISION_SMS_HOURS": "[0, 24]",
    "GEO_ENGINE_DECISION_SMS_WEEKDAYS": "[0, 1, 2, 3, 4, 5, 6]",
    "GEO_ENGINE_DECISION_SMS_HOLIDAY_COUNTRY": "",
    "GEO_ENGINE_DECISION_HOLDOUT_PCT": "0",
    "GEO_ENGINE_REQUIRE_LOCATION_CONSENT": "false",
}


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OPEN_ALL_DAY, "COLUMNS": "120"}
    env.pop("GEO_ENGINE_DATABASE_URL", None)  # --database-url names it
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "backtest", *args, "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def _world(c: Any) -> None:
    """Three walk-ins (alice push, bob SMS, carol no consent) and a campaign in draft."""
    await _setup(c, {"push": GRANTED}, status="draft")
    await c.put("/v1/customers/bob", json={"consents": {"sms": GRANTED}})
    await _walk_in(c)
    await _walk_in(c, "bob")
    await _walk_in(c, "carol")


async def test_cli_prints_what_the_route_returns(open_client, settings_factory) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _world(c)
    url = settings_factory().database_url
    api = (await c.post("/v1/campaigns/c1/backtest", json={"since": SINCE, "until": UNTIL})).json()
    r = cli(url, "c1", "--since", SINCE, "--until", UNTIL, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for timing in ("seconds", "events_per_s"):
        got.pop(timing), api.pop(timing)
    assert got == api
    assert (got["events_read"], got["events"], got["offers"]) == (3, 3, 2)
    assert got["by_reason"] == {"chosen": 2, "no_consent": 1}

    table = cli(url, "c1", "--since", SINCE, "--until", UNTIL)
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "3 events read" in out and "2 would-be offers" in out
    assert "Would-be offers by store" in out and "opera" in out
    assert "no_consent" in out and "push" in out and "sms" in out
    day = datetime.fromtimestamp(T0, UTC).date().isoformat()  # Paris day of T0 (same here)
    assert day[:7] in out
    assert await svc.pool.fetchval("SELECT count(*) FROM decisions") == 0  # nothing written


async def test_cli_rejects_bad_input(open_client, settings_factory) -> None:  # type: ignore[no-untyped-def]
    c, _ = open_client
    await _world(c)
    url = settings_factory().database_url
    r = cli(url, "nope", "--since", SINCE, "--until", UNTIL)
    assert r.returncode == 1 and "no campaign 'nope'" in r.stdout
    r = cli(url, "c1", "--since", "yesterday", "--until", UNTIL)
    assert r.returncode == 2 and "--since" in r.stderr
    r = cli(url, "c1", "--since", UNTIL, "--until", SINCE)
    assert r.returncode == 2 and "--until" in r.stderr


async def test_streamed_in_chunks_same_result_and_progress(open_client) -> None:  # type: ignore[no-untyped-def]
    """Chunks of one row give the same result as one chunk, the progress callback sees every
    row, and behavioural events are replayed (located from the replayed presence)."""
    c, svc = open_client
    await _world(c)
    assert (await c.post("/v1/offers", json=offer("o2"))).status_code == 201
    doc = campaign("ev1", offer_ids=["o2"], conditions=None, cooldown_s=0)
    doc["triggers"] = [{"type": "event", "event": "search", "in_store": True}]
    assert (await c.post("/v1/campaigns", json=doc)).status_code == 201
    # alice searches inside the store (after her walk-in); bob before his: not in a store
    for who, ts in (("alice", T0 + 120), ("bob", T0 - 600)):
        row = {"customer_id": who, "type": "search", "ts": ts, "channel": "app"}
        row["properties"] = {"query": "baskets"}
        r = await c.post("/v1/events?wait=true", json={"events": [row]})
        assert r.json()["accepted"] == 1, r.text
    since, until = datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    seen: list[int] = []
    one = await run_backtest(
        svc.decisions, svc.campaigns, "ev1", since, until, chunk=1, on_chunk=seen.append
    )
    whole = await run_backtest(svc.decisions, svc.campaigns, "ev1", since, until)
    assert seen == [1] * one.events_read and one.events_read == 5  # 3 presence + 2 searches
    assert one.result == whole.result
    # only alice's search fires (she is inside the store); bob's came before he entered
    assert (one.result.events, one.result.offers) == (1, 1)
    assert one.result.by_store == {"opera": 1}
    presence_only = await run_backtest(svc.decisions, svc.campaigns, "c1", since, until, chunk=2)
    assert presence_only.events_read == 3  # a presence campaign reads no behavioural event
