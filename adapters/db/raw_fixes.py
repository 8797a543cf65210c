"""Raw fixes' daily partitions (migration 016): created ahead of the fixes, dropped whole by the
retention purge, and the DEFAULT partition that catches a fix no day holds.

raw_fixes is partitioned by RANGE on the fix time `ts`, one partition per UTC day named
partitions.raw_fixes_YYYYMMDD; partitions.raw_fixes_default holds what falls outside them (a
late fix whose day was already dropped, a skewed clock past the days created ahead). DDL takes
short locks on the parent, so every statement here runs under LOCK_TIMEOUT: a long reader
makes it fail (and the caller retry or fall back to DELETE), never queue ingest behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from adapters.db.types import Connection, Pool

PARENT = "raw_fixes"
SCHEMA = "partitions"
DEFAULT = "raw_fixes_default"
DAYS_AHEAD = 3  # today and the next 3 days exist, so a COPY does not land in DEFAULT
LOCK_TIMEOUT = "5s"
_LOCK_KEY = 0x7261_7766  # "rawf": one process creates partitions at a time

_PARTITIONS = r"""
SELECT c.relname AS name,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                     'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[1]::timestamptz AS lo,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                     'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[2]::timestamptz AS hi
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = 'public.raw_fixes'::regclass AND n.nspname = 'partitions'
ORDER BY lo NULLS FIRST
"""


@dataclass(frozen=True, slots=True)
class Partition:
    name: str  # in the `partitions` schema
    lo: datetime | None  # None: the DEFAULT partition
    hi: datetime | None

    @property
    def qualified(self) -> str:
        return f'{SCHEMA}."{self.name}"'

    @property
    def is_default(self) -> bool:
        return self.lo is None


def day_name(day: date) -> str:
    return f"{PARENT}_{day:%Y%m%d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(day, time(), UTC)
    return lo, lo + timedelta(days=1)


async def partitions(conn: Connection | Pool) -> list[Partition]:
    """raw_fixes' partitions, DEFAULT first, then the days in time order."""
    # the bounds are printed and parsed back in the same session: its TimeZone cannot skew them
    return [Partition(r["name"], r["lo"], r["hi"]) for r in await conn.fetch(_PARTITIONS)]


async def ensure_days(pool: Pool, today: date | None = None, ahead: int = DAYS_AHEAD) -> list[str]:
    """Creates the partitions of `today` (UTC) and the `ahead` next days that are missing;
    returns the names created. Rows of those days waiting in DEFAULT move into them."""
    today = datetime.now(UTC).date() if today is None else today
    return await create_days(pool, [today + timedelta(days=i) for i in range(ahead + 1)])


async def create_days(pool: Pool, days: list[date]) -> list[str]:
    created: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            have = {p.name for p in await partitions(conn)}
            for day in days:
                if day_name(day) not in have:
                    await _create_day(conn, day)
                    created.append(day_name(day))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return created


async def _create_day(conn: asyncpg.Connection, day: date) -> None:
    """The day's table is built outside the parent and attached: ATTACH locks the parent in
    SHARE UPDATE EXCLUSIVE mode (COPY keeps flowing), where CREATE ... PARTITION OF would take
    it exclusively. The day's rows already in DEFAULT move first, or ATTACH would refuse."""
    name = f'{SCHEMA}."{day_name(day)}"'
    lo, hi = day_bounds(day)
    default = f'{SCHEMA}."{DEFAULT}"'
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # no fix of this day may slip into DEFAULT between the move and the attach
        await conn.execute(f"LOCK TABLE {default} IN EXCLUSIVE MODE")
        await conn.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        await conn.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE ts >= $1 AND ts < $2 RETURNING *)"
            f" INSERT INTO {name} SELECT * FROM moved",
            lo,
            hi,
        )
        await conn.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name}"
            f" FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
        )


async def drop(pool: Pool, part: Partition) -> int | None:
    """Drops a day's partition; returns the rows it held, or None when a reader held it or the
    parent past LOCK_TIMEOUT (nothing changed: the caller deletes its rows instead)."""
    if part.is_default:
        raise ValueError("the DEFAULT partition is purged by DELETE, never dropped")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # counted before DROP locks the parent (exclusively, briefly): ingest waits for the
            # drop, not for the count; a late fix committed in between goes uncounted (the
            # metric), never kept. No explicit lock on the day first: a COPY holding the
            # parent and waiting for the day would deadlock with DROP waiting for the parent.
            rows: int = await conn.fetchval(f"SELECT count(*) FROM {part.qualified}")
            await conn.execute(f"DROP TABLE {part.qualified}")
    except asyncpg.LockNotAvailableError:
        return None
    return rows


async def delete_batch(pool: Pool, part: Partition, cutoff: datetime, limit: int) -> int:
    """Deletes at most `limit` rows of one partition whose fix time is before `cutoff`; how
    many. On the partition itself: a ctid is unique in one table, not across partitions."""
    sql = (
        f"DELETE FROM {part.qualified} WHERE ctid IN (SELECT ctid FROM {part.qualified}"
        " WHERE ts < $1 LIMIT $2)"
    )
    async with pool.acquire() as conn:
        status: str = await conn.execute(sql, cutoff, limit)
    return int(status.rsplit(" ", 1)[-1])
