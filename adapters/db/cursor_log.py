"""Customer cursors as a log folded into a table (migration 018).

A batch appends the cursors it changed to `customer_cursor_log` by binary COPY in its own
transaction, so what a commit guarantees is unchanged; `compact` folds the log into
`customer_cursors` in the background. A customer's cursor is its newest log row, else its
table row: `load_sql` reads both in one statement (one snapshot), so a compaction that commits
meanwhile moves a row from one to the other without it being missed or seen twice.

Newest is the highest `id`: a customer's batches commit one after another (one owner at a time,
fenced by its lease), so their ids increase with them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import asyncpg
import numpy as np

from adapters.db.pgcopy import copy_payload, fixed, float8_list, text
from geo_engine.models import CustomerCursor

log = logging.getLogger(__name__)

COLUMNS = ("customer_id", "last_ts", "last_lat", "last_lon", "last_accuracy_m", "suspect_ts",
           "suspect_lat", "suspect_lon", "suspect_accuracy_m", "suspect_count",
           "last_event_ts")  # fmt: skip
_VALUES = ", ".join(COLUMNS)
# one compaction at a time (a second process's tick skips): concurrent ones would upsert the
# same customers in different orders and deadlock
_LOCK = 0x6375_7273_6F72  # "cursor"


def copy_of(cursors: Mapping[str, CustomerCursor]) -> memoryview:
    """The cursors as customer_cursor_log rows (COLUMNS; id from its sequence), one COPY.
    Each field spelled out: a comprehension reads an attribute at half the cost of getattr or
    attrgetter, and this runs for every cursor a batch moves (the round-trip tests check the
    order against COLUMNS)."""
    cs = list(cursors.values())
    f8 = float8_list
    return copy_payload(
        [
            text(list(cursors)),
            f8([c.last_ts for c in cs]),
            f8([c.last_lat for c in cs]),
            f8([c.last_lon for c in cs]),
            f8([c.last_accuracy_m for c in cs]),
            f8([c.suspect_ts for c in cs]),
            f8([c.suspect_lat for c in cs]),
            f8([c.suspect_lon for c in cs]),
            f8([c.suspect_accuracy_m for c in cs]),
            fixed(np.array([c.suspect_count for c in cs], np.int32), ">i4"),
            f8([c.last_event_ts for c in cs]),
        ],
        len(cs),
    )


async def append(conn: asyncpg.Connection, cursors: Mapping[str, CustomerCursor]) -> None:
    """Log `cursors` in the connection's transaction."""
    await conn.copy_to_table(
        "customer_cursor_log", source=copy_of(cursors), columns=COLUMNS, format="binary"
    )


def load_sql(some: bool) -> str:
    """Every customer's cursor (or, with `some`, those in the text[] $1): the newest log row,
    else the table's."""
    theirs = " customer_id = ANY($1::text[])"
    where, and_ = (f" WHERE{theirs}", f" AND{theirs}") if some else ("", "")
    return (
        f"SELECT * FROM (SELECT DISTINCT ON (customer_id) {_VALUES} FROM customer_cursor_log"
        f"{where} ORDER BY customer_id, id DESC) AS newest UNION ALL SELECT {_VALUES}"
        " FROM customer_cursors c WHERE NOT EXISTS (SELECT 1 FROM customer_cursor_log l"
        f" WHERE l.customer_id = c.customer_id){and_}"
    )


_COMPACT = f"""
WITH moved AS (DELETE FROM customer_cursor_log RETURNING *),
newest AS (SELECT DISTINCT ON (customer_id) * FROM moved ORDER BY customer_id, id DESC)
INSERT INTO customer_cursors AS c ({_VALUES}, updated_at)
SELECT {_VALUES}, now() FROM newest
ON CONFLICT (customer_id) DO UPDATE SET
    {", ".join(f"{col} = excluded.{col}" for col in COLUMNS[1:])}, updated_at = now()
"""


async def compact(pool: asyncpg.Pool) -> int | None:
    """Fold every committed log row into customer_cursors (rows still being written stay for
    the next time); the customers updated, or None when another process is compacting."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK):
            return None
        status: str = await conn.execute(_COMPACT)
    return int(status.split()[-1])


async def compact_forever(pool: asyncpg.Pool, interval_s: float) -> None:
    """`compact` every `interval_s`: the log a restart reads stays a few intervals of fixes."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await compact(pool)
        except Exception:  # retried next tick; the log only grows meanwhile
            log.exception("customer cursors: compaction failed")
