"""Erasure's deletes: every row naming the customer or their devices, and the anonymous counts
that remain (erasure_counts: rows per table per day)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from adapters.db.personal_tables import personal_tables, subject_filter, subject_ids
from adapters.db.tx import conn_of
from geo_engine.ports import Tx


async def subject_of(tx: Tx, customer_id: str) -> tuple[list[str], list[str]]:
    """(customer ids, device ids) whose rows are the customer's: theirs and their devices'."""
    return await subject_ids(conn_of(tx), customer_id)


async def delete_subject(tx: Tx, customers: list[str], devices: list[str]) -> dict[str, int]:
    """Delete every personal row of `customers` and `devices` in `tx`; rows deleted per table.
    Counts what was deleted in erasure_counts, never who."""
    conn = conn_of(tx)
    tables = await personal_tables(conn)
    pending = sorted({*tables.by_customer, *tables.by_device})
    deleted: dict[str, int] = {}
    # a foreign key between two personal tables may need the child first: retry what failed
    for _ in range(len(pending) + 1):
        failed: list[str] = []
        for table in pending:
            where, args = subject_filter(tables, table, customers, devices)
            sql = f'DELETE FROM "{table}" WHERE {where}'  # names: info schema
            try:
                async with conn.transaction():  # a savepoint
                    status: str = await conn.execute(sql, *args)
            except asyncpg.ForeignKeyViolationError:
                failed.append(table)
                continue
            deleted[table] = deleted.get(table, 0) + int(status.rsplit(" ", 1)[-1])
        if not failed:
            break
        pending = failed
    else:
        raise RuntimeError(f"erasure blocked by foreign keys on {pending}")
    if any(deleted.values()):
        counts = [("_customers", 1), *((t, n) for t, n in deleted.items() if n)]
        await conn.executemany(
            "INSERT INTO erasure_counts (day, table_name, rows) VALUES ($1, $2, $3)"
            " ON CONFLICT (day, table_name)"
            " DO UPDATE SET rows = erasure_counts.rows + excluded.rows",
            [(datetime.now(UTC).date(), t, n) for t, n in counts],
        )
    return deleted
