"""Place evidence on PostgreSQL (home/work inference, adapters/services/places.py): the accepted
fixes to learn from, the per-cell evidence, and the job's cursor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from adapters.db.profiles import cell_evidence
from geo_engine.profile.places import CellEvidence


async def fixes_between(conn: asyncpg.Connection, after: datetime, until: datetime) -> list[Any]:
    """Accepted raw fixes received in (after, until], oldest first."""
    return list(
        await conn.fetch(
            "SELECT customer_id, extract(epoch FROM ts)::float8 AS ts, lat, lon, accuracy_m"
            " FROM raw_fixes WHERE received_at > $1 AND received_at <= $2 AND flag IS NULL"
            " ORDER BY ts",
            after,
            until,
        )
    )


async def before_oldest(conn: asyncpg.Connection) -> datetime | None:
    """Just before the oldest accepted raw fix's receipt (None: there is none). A scan, done
    once: the first time the places job runs."""
    oldest: datetime | None = await conn.fetchval(
        "SELECT min(received_at) FROM raw_fixes WHERE flag IS NULL"
    )
    return None if oldest is None else oldest - timedelta(microseconds=1)


async def place_cells(
    conn: asyncpg.Connection, customers: Sequence[str]
) -> dict[tuple[str, int, int], CellEvidence]:
    rows = await conn.fetch(
        "SELECT * FROM customer_place_cells WHERE customer_id = ANY($1)", list(customers)
    )
    return {(r["customer_id"], r["kind"], r["cell"]): cell_evidence(r) for r in rows}


async def upsert_place_cells(
    conn: asyncpg.Connection, cells: dict[tuple[str, int, int], CellEvidence]
) -> None:
    if not cells:
        return
    keys = list(cells)
    evs = [cells[k] for k in keys]
    await conn.execute(
        "INSERT INTO customer_place_cells AS p (customer_id, kind, cell, score, hours, days,"
        " last_hour, last_day) SELECT * FROM unnest($1::text[], $2::int2[], $3::int8[],"
        " $4::float8[], $5::int4[], $6::int4[], $7::int8[], $8::int4[])"
        " ON CONFLICT (customer_id, kind, cell) DO UPDATE SET score = excluded.score,"
        " hours = excluded.hours, days = excluded.days, last_hour = excluded.last_hour,"
        " last_day = excluded.last_day",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [e.score for e in evs],
        [e.hours for e in evs],
        [e.days for e in evs],
        [e.last_hour for e in evs],
        [e.last_day for e in evs],
    )


async def get_cursor(conn: asyncpg.Connection, name: str) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT value FROM profile_cursors WHERE name = $1", name
    )
    return value


async def set_cursor(conn: asyncpg.Connection, name: str, value: datetime) -> None:
    await conn.execute(
        "INSERT INTO profile_cursors (name, value) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        name,
        value,
    )
