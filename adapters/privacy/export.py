"""Right of access (GDPR art. 15): every row held on a customer, one JSON document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.privacy.tables import personal_tables, subject_ids

# never handed out, even to the data subject: they would let anyone forge this customer's taps
_SECRET_COLUMNS = frozenset({"sun_file_key", "sun_meta_key", "key_hash"})


def _plain(v: object) -> Any:
    """asyncpg values -> JSON: dates ISO 8601, bytes hex; json/jsonb arrive decoded (the pool's
    codec, adapters/db/connect.py)."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    return str(v)  # uuid, Decimal, date, ...


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: _plain(v) for k, v in record.items() if k not in _SECRET_COLUMNS}


async def export_customer(pool: asyncpg.Pool, customer_id: str) -> dict[str, Any] | None:
    """None when nothing at all is held on this id."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        tables = await personal_tables(conn)
        customers, devices = await subject_ids(conn, customer_id)
        data: dict[str, list[dict[str, Any]]] = {}
        for table in sorted({*tables.by_customer, *tables.by_device}):
            conds, args = [], []
            if table in tables.by_customer:
                conds.append("customer_id = ANY($1::text[])")
                args.append(customers)
            if table in tables.by_device and devices:
                conds.append(f"device_id = ANY(${len(args) + 1}::text[])")
                args.append(devices)
            # table names come from information_schema, never from input
            rows = await conn.fetch(f'SELECT * FROM "{table}" WHERE {" OR ".join(conds)}', *args)
            if rows:
                data[table] = [_row(r) for r in rows]
    if not data:
        return None
    return {
        "customer_id": customer_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "customer_ids": customers,
        "device_ids": devices,
        "tables": data,
    }
