"""Raw fixes in daily partitions (issue 14, migration 016): the migration keeps every row of the
old table, a COPY spanning days lands in each day's partition (DEFAULT for the days none
holds), retention drops old days whole and deletes only the boundary day and DEFAULT, and
erasure, export discovery and the places reader see the fixes through the parent as before."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from adapters.db import raw_fixes as rf
from adapters.db.connect import with_database
from adapters.db.erasure import delete_subject
from adapters.db.migrate import available, migrate
from adapters.db.personal_tables import personal_tables
from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.privacy.retention import Retention, purge
from geo_engine.ports import PresenceCommit, RawFix

DAY = 86_400.0
D = date(2020, 3, 10)  # the tests' days: far from today's partitions, dropped after each test
NOON = datetime(2020, 3, 10, 12, tzinfo=UTC).timestamp()


def fix(who: str, ts: float, flag: str | None = None) -> RawFix:
    return RawFix(who, "d-" + who, ts, 48.86, 2.36, 12.0, None, None, False, flag)


def day(offset: int) -> date:
    return D + timedelta(days=offset)


async def _write(pool: asyncpg.Pool, fixes: list[RawFix]) -> None:
    """Through the presence store's COPY, as ingest writes them."""
    async with PgTransactions(pool).transaction() as tx:
        await PgPresenceStore(pool).write(tx, PresenceCommit(raw_fixes=fixes))


async def _where(pool: asyncpg.Pool) -> dict[str, list[float]]:
    """partition name -> the fix times it holds, sorted."""
    rows = await pool.fetch(
        "SELECT c.relname AS part, extract(epoch FROM r.ts)::float8 AS ts"
        " FROM raw_fixes r JOIN pg_class c ON c.oid = r.tableoid ORDER BY 1, 2"
    )
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["part"], []).append(r["ts"])
    return out


async def _exists(pool: asyncpg.Pool, name: str) -> bool:
    return bool(await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"partitions.{name}"))


@pytest.fixture
async def days(clean_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The pool, and afterwards the tests' days dropped (today's partitions are kept)."""
    yield clean_pool
    for p in await rf.partitions(clean_pool):
        if p.lo is not None and p.lo.year < 2021:
            await clean_pool.execute(f"DROP TABLE {p.qualified}")


async def test_the_days_ahead_exist(pool: asyncpg.Pool) -> None:
    """The migration and the scheduled job create today and DAYS_AHEAD more: a COPY of now's
    fixes never lands in DEFAULT."""
    today = datetime.now(UTC).date()
    await rf.ensure_days(pool, today)
    assert await rf.ensure_days(pool, today) == []  # idempotent
    names = {p.name for p in await rf.partitions(pool)}
    assert {rf.day_name(today + timedelta(days=i)) for i in range(rf.DAYS_AHEAD + 1)} <= names
    assert rf.DEFAULT in names
    # discovery (erasure, export, retention rules) sees the parent, never a partition
    async with pool.acquire() as conn:
        tables = await personal_tables(conn)
    assert "raw_fixes" in tables.by_customer
    assert not [t for t in tables.by_customer if t.startswith("raw_fixes_")]


async def test_copy_spanning_days_lands_in_each_days_partition(days: asyncpg.Pool) -> None:
    created = await rf.create_days(days, [day(-1), day(0), day(1)])
    assert created == [rf.day_name(day(i)) for i in (-1, 0, 1)]
    # an attached day has the parent's indexes: received_at (the places reader's cursor), ts
    # (the boundary day's DELETE), customer_id (erasure, identity merges)
    indexed = await days.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = $1::regclass",
        f"partitions.{rf.day_name(day(0))}",
    )
    assert sorted(r["attname"] for r in indexed) == ["customer_id", "received_at", "ts"]
    ts = [NOON - DAY, NOON - 12 * 3600, NOON, NOON + 12 * 3600 - 1, NOON + DAY]
    late, skewed = NOON - 5 * DAY, NOON + 9 * DAY  # no partition holds their day
    await _write(days, [fix("a", t) for t in [*ts, late, skewed]])
    assert await _where(days) == {
        rf.day_name(day(-1)): [NOON - DAY],
        rf.day_name(day(0)): [NOON - 12 * 3600, NOON, NOON + 12 * 3600 - 1],
        rf.day_name(day(1)): [NOON + DAY],
        rf.DEFAULT: [late, skewed],
    }
    # the skewed fix's day is created later: the fix moves out of DEFAULT into it
    assert await rf.create_days(days, [day(9)]) == [rf.day_name(day(9))]
    where = await _where(days)
    assert where[rf.day_name(day(9))] == [skewed] and where[rf.DEFAULT] == [late]


async def test_retention_drops_old_days_whole(days: asyncpg.Pool) -> None:
    await rf.create_days(days, [day(i) for i in range(-4, 2)])
    hour = 3600.0
    fixes = [fix(f"c{i}", NOON + i * DAY + k * hour) for i in range(-4, 2) for k in (-6, 0, 6)]
    fixes += [fix("late", NOON - 30 * DAY), fix("ahead", NOON + 30 * DAY)]  # DEFAULT
    await _write(days, fixes)
    batches: list[tuple[str, int]] = []
    # raw fixes kept 1 day, now = D 12:00: the cutoff falls at 12:00 of the day before
    now = NOON
    cutoff = now - DAY
    done = await purge(
        days,
        Retention(raw_s=DAY, derived_s=395 * DAY, batch_rows=2),
        now=now,
        on_batch=lambda t, n: batches.append((t, n)),
    )
    older = [f for f in fixes if f.ts < cutoff]
    assert done["raw_fixes"] == len(older) == 3 * 3 + 1 + 1  # 3 whole days, 06:00 of D-1, late
    # the days that end before the cutoff are gone, tables and all; the others remain
    for i in (-4, -3, -2):
        assert not await _exists(days, rf.day_name(day(i))), i
    for i in (-1, 0, 1):
        assert await _exists(days, rf.day_name(day(i))), i
    # whole days report their rows at once; the boundary day and DEFAULT delete in batches
    assert [n for t, n in batches if t == "raw_fixes"] == [3, 3, 3, 1, 1]
    left = await days.fetch(
        "SELECT customer_id, extract(epoch FROM ts)::float8 AS ts FROM raw_fixes ORDER BY ts"
    )
    assert [(r["customer_id"], r["ts"]) for r in left] == [
        (f.customer_id, f.ts) for f in sorted(fixes, key=lambda f: f.ts) if f.ts >= cutoff
    ]
    old = "SELECT count(*) FROM raw_fixes WHERE ts < to_timestamp($1)"
    assert await days.fetchval(old, cutoff) == 0
    # raw fixes kept 0 s: every day up to now goes, DEFAULT's past row too, the future stays
    done = await purge(days, Retention(0.0, 395 * DAY, 100), now=now)
    assert done["raw_fixes"] == 3  # D-1 dropped (its 12:00 and 18:00), D's 06:00 deleted
    where = await _where(days)
    assert where == {
        rf.day_name(day(0)): [NOON, NOON + 6 * hour],
        rf.day_name(day(1)): [NOON + DAY - 6 * hour, NOON + DAY, NOON + DAY + 6 * hour],
        rf.DEFAULT: [NOON + 30 * DAY],
    }
    assert not await _exists(days, rf.day_name(day(-1)))


async def test_a_busy_day_is_deleted_instead_of_dropped(
    days: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader holding raw_fixes past the lock timeout: the old day's rows are deleted (the
    retention promise holds), its empty table is dropped by the next purge."""
    monkeypatch.setattr(rf, "LOCK_TIMEOUT", "200ms")
    await rf.create_days(days, [day(-3), day(0)])
    await _write(days, [fix("a", NOON - 3 * DAY), fix("a", NOON - 3 * DAY + 60), fix("b", NOON)])
    r = Retention(raw_s=DAY, derived_s=395 * DAY, batch_rows=10)
    async with days.acquire() as reader, reader.transaction():
        await reader.fetchval("SELECT count(*) FROM raw_fixes")  # holds the parent
        done = await purge(days, r, now=NOON)
    assert done["raw_fixes"] == 2
    assert await _exists(days, rf.day_name(day(-3)))
    assert await days.fetchval("SELECT count(*) FROM raw_fixes") == 1
    assert (await purge(days, r, now=NOON))["raw_fixes"] == 0
    assert not await _exists(days, rf.day_name(day(-3)))


async def test_erasure_and_the_places_reader_see_every_partition(days: asyncpg.Pool) -> None:
    await rf.create_days(days, [day(0), day(1)])
    mine = [fix("crm-1", NOON), fix("crm-1", NOON + DAY), fix("crm-1", NOON - 40 * DAY)]
    theirs = [fix("bystander", NOON + 60), fix("bystander", NOON + DAY + 60, "mock")]
    await _write(days, mine + theirs)
    # the places reader: every accepted fix received since its mark, whatever its partition
    store = PgProfileStore(days)
    async with PgTransactions(days).transaction() as tx:
        got = await store.fixes_since(tx, "places", datetime.now(UTC))
    assert [(f.customer_id, f.ts) for f in got] == [
        ("crm-1", NOON - 40 * DAY),
        ("crm-1", NOON),
        ("bystander", NOON + 60),
        ("crm-1", NOON + DAY),
    ]
    await _write(days, [fix("crm-1", NOON + 120)])
    async with PgTransactions(days).transaction() as tx:
        got = await store.fixes_since(tx, "places", datetime.now(UTC))
    assert [(f.customer_id, f.ts) for f in got] == [("crm-1", NOON + 120)]
    # erasure: the customer's fixes in every day and in DEFAULT, counted once
    async with PgTransactions(days).transaction() as tx:
        deleted = await delete_subject(tx, ["crm-1"], ["d-crm-1"])
    assert deleted["raw_fixes"] == 4
    assert not [t for t in deleted if t.startswith("raw_fixes_")]
    assert await days.fetchval("SELECT count(*) FROM raw_fixes WHERE customer_id = 'crm-1'") == 0
    assert await days.fetchval("SELECT count(*) FROM raw_fixes") == 2


async def test_migration_moves_the_old_tables_rows_into_days(server_url: str) -> None:
    """A database at 015 holding raw fixes in the plain table: 016 keeps every row, each in its
    day's partition (DEFAULT for days too old or too far ahead), with the indexes."""
    name = f"geo_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for mig in available():
                if mig.version < 16:
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        mig.version,
                        mig.name,
                    )
            today = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
            t0 = today.timestamp()
            ages = [-2 * DAY + 5, -DAY + 7, -1.0, 0.0, 3600.0, 2 * DAY, 20 * DAY, -3000 * DAY]
            await conn.execute(
                "INSERT INTO raw_fixes (customer_id, device_id, ts, lat, lon, accuracy_m, flag,"
                " received_at) SELECT 'c' || i, 'd', to_timestamp($1 + a), 48.8, 2.3, i, 'f' || i,"
                " to_timestamp(1e9 + i) FROM unnest($2::float8[]) WITH ORDINALITY AS u(a, i)",
                t0,
                ages,
            )
            before = await conn.fetch("SELECT * FROM raw_fixes ORDER BY customer_id")
        finally:
            await conn.close()

        pool = await asyncpg.create_pool(with_database(server_url, name), min_size=1, max_size=2)
        try:
            # 016 and whatever came after it
            later = [m.version for m in available() if m.version >= 16]
            assert [m.version for m in await migrate(pool)] == later
            after = await pool.fetch("SELECT * FROM raw_fixes ORDER BY customer_id")
            assert [tuple(r) for r in after] == [tuple(r) for r in before]
            assert await pool.fetchval("SELECT to_regclass('raw_fixes_unpartitioned')") is None
            where = await _where(pool)
            d0 = today.date()
            assert where[rf.day_name(d0 - timedelta(days=2))] == [t0 - 2 * DAY + 5]
            assert where[rf.day_name(d0 - timedelta(days=1))] == [t0 - DAY + 7, t0 - 1.0]
            assert where[rf.day_name(d0)] == [t0, t0 + 3600.0]
            assert where[rf.day_name(d0 + timedelta(days=2))] == [t0 + 2 * DAY]
            assert where[rf.DEFAULT] == [t0 - 3000 * DAY, t0 + 20 * DAY]
            names = {p.name for p in await rf.partitions(pool)}
            assert rf.day_name(d0 + timedelta(days=rf.DAYS_AHEAD)) in names
            # the parent's indexes, on every partition
            idx = await pool.fetch(
                "SELECT indexrelid::regclass::text AS i FROM pg_index"
                " WHERE indrelid = $1::regclass",
                f"partitions.{rf.day_name(d0)}",
            )
            assert len(idx) == 3
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
