"""App push tokens as the app registers them (`push_tokens`): one row per token, owned by the
customer who registered it last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Registered:
    previous_owner: str | None  # the customer the token belonged to before, if known
    at: datetime


async def register_token(
    pool: asyncpg.Pool, token: str, customer_id: str, provider: str, platform: str | None
) -> Registered:
    """Upsert: a known token is refreshed (it becomes the customer's newest) and may move to
    another customer."""
    async with pool.acquire() as conn, conn.transaction():
        before: str | None = await conn.fetchval(
            "SELECT customer_id FROM push_tokens WHERE token = $1 FOR UPDATE", token
        )
        at: datetime = await conn.fetchval(
            "INSERT INTO push_tokens (token, customer_id, provider, platform) VALUES"
            " ($1, $2, $3, $4) ON CONFLICT (token) DO UPDATE SET customer_id = $2,"
            " provider = $3, platform = $4, created_at = now(), updated_at = now()"
            " RETURNING created_at",
            token,
            customer_id,
            provider,
            platform,
        )
    return Registered(before, at)


async def delete_token(pool: asyncpg.Pool, token: str) -> bool:
    """False for an unknown token."""
    n = await pool.fetchval(
        # an APNs token is stored in lower case; the app may send it in upper case
        "WITH d AS (DELETE FROM push_tokens WHERE token = $1"
        " OR ($1 ~ '^[0-9a-fA-F]{64}$' AND token = lower($1)) RETURNING 1)"
        " SELECT count(*) FROM d",
        token,
    )
    return bool(n)
