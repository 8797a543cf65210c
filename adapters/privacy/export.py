"""Right of access (GDPR art. 15): every row held on a customer, one JSON document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.db.export import subject_rows
from adapters.db.types import Pool

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


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in record.items() if k not in _SECRET_COLUMNS}


async def export_customer(pool: Pool, customer_id: str) -> dict[str, Any] | None:
    """None when nothing at all is held on this id."""
    held = await subject_rows(pool, customer_id)
    if not held.tables:
        return None
    return {
        "customer_id": customer_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "customer_ids": held.customer_ids,
        "device_ids": held.device_ids,
        "tables": {t: [_row(r) for r in rows] for t, rows in held.tables.items()},
    }
