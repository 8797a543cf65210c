"""IdentityDirectory on PostgreSQL (linking itself comes with identity resolution)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


class PgIdentityDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def customers_of(self, type_: str, values: Sequence[str]) -> dict[str, str]:
        if not values:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT value, customer_id FROM identities WHERE type = $1 AND value = ANY($2)",
                type_,
                list(set(values)),
            )
        return {r["value"]: r["customer_id"] for r in rows}
