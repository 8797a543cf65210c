"""API keys on PostgreSQL (the `api_keys` table): only the SHA-256 of a key is stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a live key may do: its id, role and store scope."""

    key_id: str
    role: str
    store_ids: list[str]


async def live_key(pool: asyncpg.Pool, key_hash: str) -> KeyGrant | None:
    """The key with this hash, unless unknown or revoked."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, role, store_ids FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            key_hash,
        )
    return None if row is None else KeyGrant(row["id"], row["role"], list(row["store_ids"]))


async def insert_key(
    pool: asyncpg.Pool,
    key_id: str,
    name: str,
    role: str,
    store_ids: Sequence[str],
    key_hash: str,
    key_prefix: str,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO api_keys (id, name, role, store_ids, key_hash, key_prefix)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            key_id,
            name,
            role,
            list(store_ids),
            key_hash,
            key_prefix,
        )


async def all_keys(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every key, revoked ones included, oldest first; never the hash."""
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT id, name, role, store_ids, key_prefix, created_at, revoked_at"
            " FROM api_keys ORDER BY created_at"
        )
    return rows


async def revoke_key(pool: asyncpg.Pool, key_id: str) -> bool:
    """False when no such key is live (unknown, or revoked already)."""
    async with pool.acquire() as conn:
        status: str = await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            key_id,
        )
    return status.endswith(" 1")
