"""Cursors are appended to a log and folded into their table by compaction (migration 018):
whatever the interleaving, a load sees each customer's newest cursor, once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from adapters.db import cursor_log
from adapters.db.identities import PgIdentityDirectory
from adapters.db.presence_store import PgPresenceStore
from adapters.db.tx import PgTransactions
from geo_engine.models import CustomerCursor
from geo_engine.ports import PresenceCommit
from tests.helpers import LAT0, LON0

T = 1_790_000_000.0


def _cur(dt: float, **kw: float | int | None) -> CustomerCursor:
    return CustomerCursor(T + dt, LAT0, LON0 + dt * 1e-5, **kw)  # type: ignore[arg-type]


async def _commit(pool: asyncpg.Pool, cursors: dict[str, CustomerCursor]) -> None:
    async with PgTransactions(pool).transaction() as tx:
        await PgPresenceStore(pool).write(tx, PresenceCommit(cursors=cursors))


async def _rows(pool: asyncpg.Pool) -> tuple[int, int]:
    return (
        await pool.fetchval("SELECT count(*) FROM customer_cursor_log"),
        await pool.fetchval("SELECT count(*) FROM customer_cursors"),
    )


async def test_the_newest_cursor_wins_across_log_and_table(clean_pool: asyncpg.Pool) -> None:
    store = PgPresenceStore(clean_pool)
    await _commit(clean_pool, {"a": _cur(1), "b": _cur(1)})
    assert await cursor_log.compact(clean_pool) == 2
    assert await _rows(clean_pool) == (0, 2)
    # a's newer cursors, logged twice after the compaction: the last one holds
    await _commit(clean_pool, {"a": _cur(2, suspect_ts=T + 2.5, suspect_count=1)})
    newest = _cur(3, last_accuracy_m=7.5, last_event_ts=T + 3.25)
    await _commit(clean_pool, {"a": newest, "c": _cur(float("-inf"))})
    expected = [("a", newest), ("b", _cur(1)), ("c", _cur(float("-inf")))]
    cursors, _ = await store.load()
    assert sorted(cursors) == expected
    assert (await store.load(["a", "b"]))[0] == expected[:2]
    # folded: the same cursors, from the table alone now
    assert await cursor_log.compact(clean_pool) == 2
    assert await _rows(clean_pool) == (0, 3)
    assert sorted((await store.load())[0]) == expected
    assert await cursor_log.compact(clean_pool) == 0


async def test_a_commit_in_flight_during_compaction_is_kept(clean_pool: asyncpg.Pool) -> None:
    store = PgPresenceStore(clean_pool)
    await _commit(clean_pool, {"a": _cur(1)})
    async with PgTransactions(clean_pool).transaction() as tx:
        await store.write(tx, PresenceCommit(cursors={"a": _cur(2)}))
        # the batch's rows are not committed: compaction folds the older one, leaves these
        assert await asyncio.wait_for(cursor_log.compact(clean_pool), 10) == 1
    assert await _rows(clean_pool) == (1, 1)
    assert (await store.load())[0] == [("a", _cur(2))]
    assert await cursor_log.compact(clean_pool) == 1
    assert (await store.load())[0] == [("a", _cur(2))]


async def test_one_compaction_at_a_time(clean_pool: asyncpg.Pool) -> None:
    await _commit(clean_pool, {"a": _cur(1)})
    async with clean_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", cursor_log._LOCK)
        assert await cursor_log.compact(clean_pool) is None  # skipped, not queued
    assert await cursor_log.compact(clean_pool) == 1


async def test_a_merged_customer_leaves_no_cursor(clean_pool: asyncpg.Pool) -> None:
    await _commit(clean_pool, {"device:p1": _cur(1)})
    await cursor_log.compact(clean_pool)
    await _commit(clean_pool, {"device:p1": _cur(2), "alice": _cur(1)})
    directory = PgIdentityDirectory(clean_pool)
    async with PgTransactions(clean_pool).transaction() as tx:
        await directory.reattribute(tx, "device:p1", "alice", {})
    cursors, _ = await PgPresenceStore(clean_pool).load()
    assert [cid for cid, _ in cursors] == ["alice"]


async def test_the_engine_compacts_on_a_schedule(
    clean_pool: asyncpg.Pool,
    settings_factory: Any,
) -> None:
    from adapters.composition import build_services

    await _commit(clean_pool, {"a": _cur(1), "b": _cur(2)})
    svc = await build_services(settings_factory(cursor_compact_interval_s=0.2), background=True)
    try:
        for _ in range(50):
            if await _rows(clean_pool) == (0, 2):
                break
            await asyncio.sleep(0.1)
        assert await _rows(clean_pool) == (0, 2)
    finally:
        await svc.close()
    assert sorted((await PgPresenceStore(clean_pool).load())[0]) == [("a", _cur(1)), ("b", _cur(2))]
