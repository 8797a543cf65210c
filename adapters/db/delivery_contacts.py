"""How the gateways reach a customer: their phone identities (and those a provider rejected)
and their push tokens. (Tokens as the app registers them: adapters/db/push_tokens.py.)"""

from __future__ import annotations

import asyncpg


async def phone_of(pool: asyncpg.Pool, customer_id: str) -> str | None:
    """The customer's most recently linked phone not reported invalid."""
    value: str | None = await pool.fetchval(
        "SELECT value FROM identities WHERE customer_id = $1 AND type = 'phone'"
        " AND invalid_at IS NULL ORDER BY created_at DESC, value LIMIT 1",
        customer_id,
    )
    return value


async def phones_of(pool: asyncpg.Pool, customer_id: str) -> list[str]:
    """Every phone identity of the customer, as stored, invalid ones included."""
    rows = await pool.fetch(
        "SELECT value FROM identities WHERE customer_id = $1 AND type = 'phone'", customer_id
    )
    return [r["value"] for r in rows]


async def customer_of_phone(pool: asyncpg.Pool, number: str) -> str | None:
    """The customer whose phone identity is `number` (as stored: E.164)."""
    found: str | None = await pool.fetchval(
        "SELECT customer_id FROM identities WHERE type = 'phone' AND value = $1", number
    )
    return found


async def mark_phone_invalid(pool: asyncpg.Pool, customer_id: str, phone: str, reason: str) -> None:
    await pool.execute(
        "UPDATE identities SET invalid_at = now(), invalid_reason = $3"
        " WHERE type = 'phone' AND value = $2 AND customer_id = $1",
        customer_id,
        phone,
        reason,
    )


async def push_tokens_of(pool: asyncpg.Pool, customer_id: str, provider: str) -> list[str]:
    """The customer's registration tokens of that provider (fcm, apns), newest first."""
    rows = await pool.fetch(
        "SELECT token FROM push_tokens WHERE customer_id = $1 AND provider = $2"
        " ORDER BY created_at DESC, token",
        customer_id,
        provider,
    )
    return [r["token"] for r in rows]


async def push_providers_of(pool: asyncpg.Pool, customer_id: str) -> list[str]:
    """The providers the customer has tokens with, the one of the newest token first."""
    rows = await pool.fetch(
        "SELECT provider, max(created_at) AS newest FROM push_tokens WHERE customer_id = $1"
        " GROUP BY provider ORDER BY newest DESC, provider",
        customer_id,
    )
    return [r["provider"] for r in rows]


async def remove_push_token(pool: asyncpg.Pool, customer_id: str, token: str) -> None:
    await pool.execute(
        "DELETE FROM push_tokens WHERE token = $1 AND customer_id = $2", token, customer_id
    )
