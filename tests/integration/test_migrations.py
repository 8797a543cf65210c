"""Migrations: recorded once each; re-running is a no-op."""

from __future__ import annotations

import asyncpg

from adapters.db.migrate import available, migrate


async def test_rerunning_migrations_is_a_no_op(pool: asyncpg.Pool) -> None:
    assert await migrate(pool) == []
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in available()]
    assert rows[0]["version"] == 1
