"""Raw fixes into PostgreSQL, the client's CPU per fix: one RawFix and one tuple per fix through
asyncpg's `copy_records_to_table` (the path before issue 14's binary COPY) against the batch's
columns as one binary COPY stream (adapters/db/pgcopy.py). Into a temporary table shaped like
raw_fixes, so the server's partition routing is left out; CPU time of this process only.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python scripts/bench_raw_copy.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.db.pgcopy import RAW_FIX_COLUMNS, raw_fixes_copy
from geo_engine.ports import RawFix
from geo_engine.presence_raw import RawFixColumns


def batch(n: int, customers: int) -> RawFixColumns:
    rng = np.random.default_rng(1)
    acc = rng.uniform(3, 30, n)
    acc[rng.random(n) < 0.5] = np.nan  # half the clients send no accuracy
    return RawFixColumns(
        [f"cust-{i % customers:05d}" for i in range(n)],
        [f"dev-{i % customers:05d}" for i in range(n)],
        time.time() - rng.uniform(0, 3600, n),
        rng.uniform(48.8, 48.9, n),
        rng.uniform(2.2, 2.4, n),
        acc,
        np.full(n, np.nan),
        np.full(n, np.nan),
        np.zeros(n, np.bool_),
        [None] * n,
    )


def rows_before(cols: RawFixColumns) -> list[tuple[Any, ...]]:
    """What ingest built before: a RawFix per fix, then a tuple with a datetime per fix."""

    def known(v: float) -> float | None:
        return None if v != v else v

    fixes = [
        RawFix(c, d, t, la, lo, known(a), known(s), known(h), bool(m), f)
        for c, d, t, la, lo, a, s, h, m, f in zip(
            cols.customer_ids, cols.device_ids, cols.ts.tolist(), cols.lat.tolist(),
            cols.lon.tolist(), cols.accuracy_m.tolist(), cols.speed_mps.tolist(),
            cols.heading.tolist(), cols.mock.tolist(), cols.flags, strict=True,
        )
    ]  # fmt: skip
    return [
        (f.customer_id, f.device_id, datetime.fromtimestamp(f.ts, UTC), f.lat, f.lon,
         f.accuracy_m, f.speed_mps, f.heading, f.mock, f.flag)
        for f in fixes
    ]  # fmt: skip


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fixes", type=int, default=50_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TEMP TABLE rf (LIKE raw_fixes INCLUDING DEFAULTS)")
    cols = batch(a.fixes, a.customers)

    def before() -> Callable[[], Awaitable[Any]]:
        rows = rows_before(cols)
        return lambda: conn.copy_records_to_table("rf", records=rows, columns=RAW_FIX_COLUMNS)

    def after() -> Callable[[], Awaitable[Any]]:
        payload = raw_fixes_copy(cols)
        return lambda: conn.copy_to_table(
            "rf", source=payload, columns=RAW_FIX_COLUMNS, format="binary"
        )

    for name, build in (("rows, copy_records_to_table", before), ("binary COPY", after)):
        cpu = []
        for _ in range(a.repeat):
            c0 = time.process_time()
            await build()()
            cpu.append(time.process_time() - c0)
            await conn.execute("TRUNCATE rf")
        us = statistics.median(cpu) / a.fixes * 1e6
        print(f"{name}: {us:.2f} µs of client CPU per fix (median of {a.repeat})")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
