"""SMS customers sent us (`inbound_messages`, migration 008): the keyword matched, the action
taken, and who sent it (the customer id, or a hash of an unknown number), never the text."""

from __future__ import annotations

import asyncpg


async def is_seen(pool: asyncpg.Pool, message_sid: str) -> bool:
    seen = await pool.fetchval("SELECT 1 FROM inbound_messages WHERE message_sid = $1", message_sid)
    return bool(seen)


async def record_inbound(
    pool: asyncpg.Pool,
    message_sid: str,
    customer_id: str | None,
    phone_hash: str | None,
    keyword: str | None,
    action: str,
) -> None:
    """Once per MessageSid: a replay is not a new row."""
    await pool.execute(
        "INSERT INTO inbound_messages (message_sid, customer_id, phone_hash, keyword, action)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_sid) DO NOTHING",
        message_sid,
        customer_id,
        phone_hash,
        keyword,
        action,
    )
