"""Consent statements written on their own (`PUT /v1/customers/{id}/consents`): the log and the
current statement per purpose, in one transaction."""

from __future__ import annotations

import asyncpg

from adapters.db import profiles
from geo_engine.profile.attributes import Consent, ConsentPurpose


async def record_consents(
    pool: asyncpg.Pool, customer_id: str, consents: dict[ConsentPurpose, Consent]
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await profiles.put_consents(conn, customer_id, consents)
