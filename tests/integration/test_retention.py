"""Retention (issue 8): raw location signals expire after raw_fix_retention_s, derived data after
derived_retention_days; the purge deletes in batches, on a schedule and via `geo-engine purge`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from typer.testing import CliRunner

from adapters.cli import app
from adapters.privacy.retention import KEPT_TABLES, RAW_TABLES, Retention, purge

DAY = 86_400.0
NOW = time.time()


async def _seed(conn: asyncpg.Connection, n_old: int, n_new: int) -> None:
    """raw fixes 2 days and 1 h old; presence and behavioural events 400 and 10 days old."""
    for age, n in ((2 * DAY, n_old), (3600.0, n_new)):
        await conn.execute(
            "INSERT INTO raw_fixes (customer_id, ts, lat, lon)"
            " SELECT 'c' || i, to_timestamp($1), 48.8, 2.3 FROM generate_series(1, $2) i",
            NOW - age,
            n,
        )
    for age, n in ((400 * DAY, n_old), (10 * DAY, n_new)):
        await conn.execute(
            "INSERT INTO presence_events (customer_id, geofence_id, type, ts)"
            " SELECT 'c' || i, 'f', 'enter', to_timestamp($1) FROM generate_series(1, $2) i",
            NOW - age,
            n,
        )
        await conn.execute(
            "INSERT INTO behaviour_events (customer_id, type, channel, ts)"
            " SELECT 'c' || i, 'click', 'web', to_timestamp($1) FROM generate_series(1, $2) i",
            NOW - age,
            n,
        )
    # a consent given 3 years ago is proof, not behaviour: never purged by age
    await conn.execute(
        "INSERT INTO customer_consents (customer_id, purpose, status, at, source)"
        " VALUES ('c1', 'location', 'granted', to_timestamp($1), 'app')",
        NOW - 1000 * DAY,
    )


async def _count(conn: asyncpg.Connection, table: str) -> int:
    n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")
    return n


async def test_rules_are_discovered(clean_pool: asyncpg.Pool) -> None:
    r = Retention(raw_s=DAY, derived_s=395 * DAY, batch_rows=10)
    async with clean_pool.acquire() as conn:
        rules = {x.table: x for x in await r.rules(conn)}
    assert set(RAW_TABLES) <= set(rules)
    assert all(rules[t].max_age_s == DAY for t in RAW_TABLES)
    for t in ("presence_events", "behaviour_events", "velocity_signals"):
        assert rules[t].max_age_s == 395 * DAY, t
    assert not KEPT_TABLES & set(rules)
    assert rules["velocity_signals"].column == "as_of"


async def test_purge_in_batches(clean_pool: asyncpg.Pool) -> None:
    async with clean_pool.acquire() as conn:
        await _seed(conn, n_old=25, n_new=7)
    batches: list[tuple[str, int]] = []
    r = Retention(raw_s=DAY, derived_s=395 * DAY, batch_rows=10)
    done = await purge(clean_pool, r, now=NOW, on_batch=lambda t, n: batches.append((t, n)))
    assert done["raw_fixes"] == 25 and done["presence_events"] == 25
    assert done["behaviour_events"] == 25
    assert [n for t, n in batches if t == "raw_fixes"] == [10, 10, 5]
    async with clean_pool.acquire() as conn:
        for t in ("raw_fixes", "presence_events", "behaviour_events"):
            assert await _count(conn, t) == 7, t
        assert await _count(conn, "customer_consents") == 1
    # idempotent; and raw_s = 0 (never stored) purges whatever raw fix is left
    assert sum((await purge(clean_pool, r, now=NOW)).values()) == 0
    done = await purge(clean_pool, Retention(0.0, 395 * DAY, 10), now=NOW)
    assert done["raw_fixes"] == 7 and done["presence_events"] == 0


def test_purge_command(clean_pool: asyncpg.Pool, database_url: str) -> None:
    async def seed() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await _seed(conn, n_old=30, n_new=3)
        finally:
            await conn.close()

    asyncio.run(seed())
    env = {"DATABASE_URL": database_url, "GEO_ENGINE_PURGE_BATCH_ROWS": "7"}
    out = CliRunner().invoke(app, ["purge"], env=env)
    assert out.exit_code == 0, out.output
    assert "raw_fixes: 30 rows" in out.output
    assert "purged 90 rows" in out.output and "rows/s" in out.output


async def test_serve_purges_on_a_schedule(clean_pool: asyncpg.Pool, settings_factory: Any) -> None:
    from adapters.composition import build_services

    async with clean_pool.acquire() as conn:
        await _seed(conn, n_old=5, n_new=2)
    svc = await build_services(settings_factory(purge_interval_s=0.2), background=True)
    try:
        for _ in range(50):  # the first purge runs at start, then every interval
            async with clean_pool.acquire() as conn:
                if await _count(conn, "raw_fixes") == 2:
                    break
            await asyncio.sleep(0.1)
        async with clean_pool.acquire() as conn:
            assert await _count(conn, "raw_fixes") == 2
            assert await _count(conn, "presence_events") == 2
    finally:
        await svc.close()
