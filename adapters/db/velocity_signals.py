"""Reading back the velocity crossings stored at ingest (`velocity_signals`), oldest first."""

from __future__ import annotations

from typing import Any

import asyncpg


async def signals_after(
    pool: asyncpg.Pool, after_id: int, customer_id: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` signals with an id above `after_id`, of one customer or of all."""
    sql = (
        "SELECT id, customer_id, figure, previous_trend, trend, latest, previous, pct_change,"
        " window_days, as_of FROM velocity_signals WHERE id > $1"
        + (" AND customer_id = $3" if customer_id is not None else "")
        + " ORDER BY id LIMIT $2"
    )
    args: list[Any] = [after_id, limit] + ([customer_id] if customer_id is not None else [])
    async with pool.acquire() as conn:
        rows = await conn.fetch(sql, *args)
    return [dict(r) for r in rows]
