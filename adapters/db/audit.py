"""The audit log on PostgreSQL (`audit_log`): one row per audited change, read back by id."""

from __future__ import annotations

from typing import Any

import asyncpg


async def insert_entry(
    pool: asyncpg.Pool, key_id: str, role: str, method: str, route: str, path: str, status: int
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO audit_log (key_id, role, method, route, path, status)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            key_id,
            role,
            method,
            route,
            path,
            status,
        )


async def entries_after(pool: asyncpg.Pool, *, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Entries with an id above `after_id`, oldest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, at, key_id, role, method, route, path, status FROM audit_log"
            " WHERE id > $1 ORDER BY id LIMIT $2",
            after_id,
            limit,
        )
    return [dict(r) for r in rows]
