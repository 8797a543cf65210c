"""Right of access (GDPR art. 15) on PostgreSQL: every row held on a customer, read in one
repeatable-read snapshot so the tables agree with each other."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from adapters.db.personal_tables import personal_tables, subject_filter, subject_ids


@dataclass(frozen=True, slots=True)
class SubjectRows:
    customer_ids: list[str]  # the customer and the `device:` customers their devices were
    device_ids: list[str]
    tables: dict[str, list[asyncpg.Record]]  # table -> its rows on the subject; none if empty


async def subject_rows(pool: asyncpg.Pool, customer_id: str) -> SubjectRows:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        tables = await personal_tables(conn)
        customers, devices = await subject_ids(conn, customer_id)
        data: dict[str, list[asyncpg.Record]] = {}
        for table in sorted({*tables.by_customer, *tables.by_device}):
            where, args = subject_filter(tables, table, customers, devices)
            # table names come from information_schema, never from input
            rows = await conn.fetch(f'SELECT * FROM "{table}" WHERE {where}', *args)
            if rows:
                data[table] = list(rows)
    return SubjectRows(customers, devices, data)
