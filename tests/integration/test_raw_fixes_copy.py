"""Raw fixes by binary COPY built from the batch's columns (adapters/db/pgcopy.py): what lands
in raw_fixes is what was sent — every column, NULLs, unicode ids, timestamps rounded to the
microsecond as `datetime.fromtimestamp` rounds them, the rows of each UTC day in that day's
partition (a fix half a microsecond before midnight rounds into the next day) — whether the
fixes come as columns from the hot path or as rows from another caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import numpy as np
import pytest

from adapters.db import raw_fixes as rf
from adapters.db.pgcopy import RAW_FIX_COLUMNS, raw_fixes_copy
from adapters.db.presence_store import PgPresenceStore
from adapters.db.tx import PgTransactions
from geo_engine.ports import PresenceCommit, RawFix
from geo_engine.presence_raw import RawFixColumns

D = date(2020, 4, 20)  # far from today's partitions; dropped after the test
MIDNIGHT = datetime(2020, 4, 21, tzinfo=UTC).timestamp()  # D's end, D+1's start

ROWS = [
    RawFix("c-ascii", "dev-1", MIDNIGHT - 3600.25, 48.8566, 2.3522, 12.5, 1.5, 270.0, False, None),
    # unicode ids, no device, every optional float unknown, a mocked fix with a flag
    RawFix("client-é日本-😀", None, MIDNIGHT - 1e-3, -33.9, 151.2, None, None, None, True, "mock"),
    # half a microsecond before midnight: rounds (half to even) up to D+1 00:00:00
    RawFix("c-ascii", "dév-2", MIDNIGHT - 5e-7, 0.0, -0.0, 0.0, None, 359.9, False, "late"),
    RawFix("c-3", "dev-3", MIDNIGHT, 1e-9, -179.999999, None, 0.0, None, False, "duplicate"),
    RawFix("c-4", "", MIDNIGHT + 0.0000015, 89.9, 179.9, 3.0, 40.0, 0.0, False, None),
    RawFix("c-5", "dev-5", MIDNIGHT + 86_399.9999994, 45.0, 5.0, 7.0, None, None, False, None),
]


@pytest.fixture
async def days(clean_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    await rf.create_days(clean_pool, [D, date(2020, 4, 21)])
    yield clean_pool
    for p in await rf.partitions(clean_pool):
        if p.lo is not None and p.lo.year < 2021:
            await clean_pool.execute(f"DROP TABLE {p.qualified}")


async def _write(pool: asyncpg.Pool, fixes: list[RawFix] | RawFixColumns) -> None:
    async with PgTransactions(pool).transaction() as tx:
        await PgPresenceStore(pool).write(tx, PresenceCommit(raw_fixes=fixes))


async def _stored(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        "SELECT c.relname AS part, r.customer_id, r.device_id, r.ts, r.lat, r.lon,"
        " r.accuracy_m, r.speed_mps, r.heading, r.mock, r.flag FROM raw_fixes r"
        " JOIN pg_class c ON c.oid = r.tableoid ORDER BY r.ts, r.customer_id"
    )
    return [tuple(r) for r in rows]


def _expected(fixes: list[RawFix]) -> list[tuple[object, ...]]:
    out = []
    for f in fixes:
        at = datetime.fromtimestamp(f.ts, UTC)  # what the row-by-row COPY stored
        part = rf.day_name(at.date())
        out.append((part, f.customer_id, f.device_id, at, f.lat, f.lon, f.accuracy_m,
                    f.speed_mps, f.heading, f.mock, f.flag))  # fmt: skip
    return sorted(out, key=lambda r: (r[3], r[1]))  # type: ignore[arg-type,return-value]


def _columns(fixes: list[RawFix]) -> RawFixColumns:
    """As the hot path hands them over: arrays, NaN for unknown."""

    def col(vals: list[float | None]) -> np.ndarray:  # type: ignore[type-arg]
        return np.array([np.nan if v is None else v for v in vals], np.float64)

    return RawFixColumns(
        [f.customer_id for f in fixes],
        [f.device_id for f in fixes],
        col([f.ts for f in fixes]),
        col([f.lat for f in fixes]),
        col([f.lon for f in fixes]),
        col([f.accuracy_m for f in fixes]),
        col([f.speed_mps for f in fixes]),
        col([f.heading for f in fixes]),
        np.array([f.mock for f in fixes]),
        [f.flag for f in fixes],
    )


async def test_columns_land_as_sent(days: asyncpg.Pool) -> None:
    await _write(days, _columns(ROWS))
    stored = await _stored(days)
    assert stored == _expected(ROWS)
    assert [r[0] for r in stored].count(rf.day_name(D)) == 2  # 23:00 and 23:59:59.999
    rounded = next(r for r in stored if r[2] == "dév-2")
    assert rounded[3] == datetime(2020, 4, 21, tzinfo=UTC)  # rounded into D+1
    assert rounded[0] == rf.day_name(date(2020, 4, 21))


async def test_rows_from_other_callers_take_the_same_copy(days: asyncpg.Pool) -> None:
    await _write(days, ROWS)
    assert await _stored(days) == _expected(ROWS)


async def test_a_large_batch_matches_row_by_row(days: asyncpg.Pool) -> None:
    """Many rows, random values (NaNs, None devices, unicode here and there): the binary
    stream stores exactly what asyncpg's row-by-row COPY of the same fixes stores."""
    rng = np.random.default_rng(3)
    n = 2_000
    ts = MIDNIGHT + rng.uniform(-3600, 3600, n)
    unknown = rng.random((3, n)) < 0.3
    fixes = [
        RawFix(
            f"c{i % 97}" + ("ü" if i % 13 == 0 else ""),
            None if i % 5 == 0 else f"d{i}",
            float(ts[i]),
            float(rng.uniform(-90, 90)),
            float(rng.uniform(-180, 180)),
            None if unknown[0, i] else float(rng.uniform(0, 100)),
            None if unknown[1, i] else float(rng.uniform(0, 40)),
            None if unknown[2, i] else float(rng.uniform(0, 360)),
            bool(i % 7 == 0),
            None if i % 3 else "suspect",
        )
        for i in range(n)
    ]
    await _write(days, _columns(fixes))
    via_columns = await _stored(days)
    await days.execute("TRUNCATE raw_fixes")
    records = [(f.customer_id, f.device_id, datetime.fromtimestamp(f.ts, UTC), f.lat, f.lon,
                f.accuracy_m, f.speed_mps, f.heading, f.mock, f.flag) for f in fixes]  # fmt: skip
    async with days.acquire() as conn:
        await conn.copy_records_to_table(
            "raw_fixes",
            records=records,
            columns=RAW_FIX_COLUMNS,
        )
    assert via_columns == await _stored(days)
    assert len(via_columns) == n


def test_an_empty_batch_is_a_header_and_a_trailer() -> None:
    assert raw_fixes_copy(_columns([])) == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"


def test_columns_read_back_as_the_rows_they_hold() -> None:
    cols = _columns(ROWS)
    assert list(cols) == ROWS and cols[-1] == ROWS[-1] and cols[1:3] == ROWS[1:3]
    assert RawFixColumns.of(ROWS)[1] == ROWS[1]
