"""The retention purge's queries: which columns exist (so rules cover tables added later) and
one bounded batch of deletes at a time (so no lock is held long and ingest keeps flowing)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def column_types(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, dict[str, str]]:
    """table -> column -> data type, for every table of the public schema."""
    cols = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    )
    by_table: dict[str, dict[str, str]] = {}
    for r in cols:
        by_table.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    return by_table


async def delete_batch(
    pool: asyncpg.Pool, table: str, column: str, cutoff: datetime, limit: int
) -> int:
    """Deletes at most `limit` rows of `table` whose `column` is before `cutoff`; how many."""
    # identifiers come from information_schema, never from input: safe to interpolate
    sql = (
        f'DELETE FROM "{table}" WHERE ctid IN (SELECT ctid FROM "{table}"'
        f' WHERE "{column}" < $1 LIMIT $2)'
    )
    async with pool.acquire() as conn:
        status: str = await conn.execute(sql, cutoff, limit)
    return int(status.rsplit(" ", 1)[-1])
