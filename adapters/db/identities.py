"""Identities on PostgreSQL: which customer owns which identifier (the IdentityDirectory port,
geo_engine/ports.py). The module's functions take a connection; the directory's methods take the
port's `Tx` (adapters/db/tx.py), which is what the services pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from adapters.db.tx import conn_of
from geo_engine.ports import Tx


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

    async def device_links(self) -> dict[str, str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT value, customer_id FROM identities WHERE type = 'device'"
            )
        return {r["value"]: r["customer_id"] for r in rows}

    async def of_customer(self, customer_id: str) -> list[tuple[str, str, datetime]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT type, value, created_at FROM identities WHERE customer_id = $1"
                " ORDER BY type, value",
                customer_id,
            )
        return [(r["type"], r["value"], r["created_at"]) for r in rows]

    async def owners(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return await owners(conn_of(tx), pairs)

    async def insert_links(
        self, tx: Tx, customer_id: str, pairs: Sequence[tuple[str, str]]
    ) -> None:
        await insert_links(conn_of(tx), customer_id, pairs)

    async def delete_links(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        await delete_links(conn_of(tx), pairs)

    async def reattribute(
        self, tx: Tx, source: str, target: str, superseded: Mapping[str, tuple[str, float]]
    ) -> int:
        return await reattribute(conn_of(tx), source, target, superseded)


async def owners(
    conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Current owners of (type, value) pairs, locked until the transaction ends."""
    rows = await conn.fetch(
        "SELECT i.type, i.value, i.customer_id FROM identities i"
        " JOIN unnest($1::text[], $2::text[]) AS u(t, v) ON i.type = u.t AND i.value = u.v"
        " FOR UPDATE OF i",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {(r["type"], r["value"]): r["customer_id"] for r in rows}


async def insert_links(
    conn: asyncpg.Connection, customer_id: str, pairs: Sequence[tuple[str, str]]
) -> None:
    await conn.executemany(
        "INSERT INTO identities (type, value, customer_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (type, value) DO NOTHING",
        [(t, v, customer_id) for t, v in pairs],
    )


async def delete_links(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    await conn.execute(
        "DELETE FROM identities i USING unnest($1::text[], $2::text[]) AS u(t, v)"
        " WHERE i.type = u.t AND i.value = u.v",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


async def reattribute(
    conn: asyncpg.Connection,
    source: str,
    target: str,
    superseded: Mapping[str, tuple[str, float]],
) -> int:
    """Move `source`'s history to `target`, dropping the open events of superseded visits.
    Returns how many presence events moved."""
    for fence_id, (owner, entered_at) in superseded.items():
        await conn.execute(
            "DELETE FROM presence_events WHERE customer_id = $1 AND geofence_id = $2"
            " AND ts >= to_timestamp($3) AND type IN ('enter', 'dwell')",
            owner,
            fence_id,
            entered_at,
        )
    status: str = await conn.execute(
        "UPDATE presence_events SET customer_id = $2 WHERE customer_id = $1", source, target
    )
    await conn.execute(
        "UPDATE raw_fixes SET customer_id = $2 WHERE customer_id = $1", source, target
    )
    # the log first, as erasure does: a compaction under way then finishes before the table
    await conn.execute("DELETE FROM customer_cursor_log WHERE customer_id = $1", source)
    await conn.execute("DELETE FROM customer_cursors WHERE customer_id = $1", source)
    await conn.execute("DELETE FROM presence_state WHERE customer_id = $1", source)
    return int(status.split()[-1])
