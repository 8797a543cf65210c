"""Readiness: whether the database answers a trivial query within a deadline."""

from __future__ import annotations

import asyncpg


async def is_reachable(pool: asyncpg.Pool, *, timeout_s: float) -> bool:
    try:
        async with pool.acquire(timeout=timeout_s) as conn:
            await conn.fetchval("SELECT 1")
    except Exception:  # refused, timed out, pool closed: all mean "not ready", never a 500
        return False
    return True
