"""Right to erasure (GDPR art. 17): every trace of a customer, in every table that names them
(discovered, so tables added later are covered: decisions, outbox rows, redemption codes, ...),
their identities, and the in-memory state of presence and profiles. Only anonymous counts
remain (erasure_counts: rows per table per day).

Presence and profile locks are held across the delete and the memory update, so a ping or an
event arriving meanwhile cannot re-create what is being erased, and memory equals storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from adapters import metrics
from adapters.privacy.metrics import ERASURES
from adapters.privacy.tables import personal_tables, subject_ids
from adapters.services.presence import PresenceRuntime
from adapters.services.profiles import ProfileService
from geo_engine.profile.state import ProfileState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Erased:
    rows: dict[str, int]  # table -> rows deleted

    @property
    def found(self) -> bool:
        return any(self.rows.values())


async def _delete_all(
    conn: asyncpg.Connection, customers: list[str], devices: list[str]
) -> dict[str, int]:
    tables = await personal_tables(conn)
    pending = sorted({*tables.by_customer, *tables.by_device})
    deleted: dict[str, int] = {}
    # a foreign key between two personal tables may need the child first: retry what failed
    for _ in range(len(pending) + 1):
        failed: list[str] = []
        for table in pending:
            conds, args = [], []
            if table in tables.by_customer:
                conds.append("customer_id = ANY($1::text[])")
                args.append(customers)
            if table in tables.by_device and devices:
                conds.append(f"device_id = ANY(${len(args) + 1}::text[])")
                args.append(devices)
            sql = f'DELETE FROM "{table}" WHERE {" OR ".join(conds)}'  # names: info schema
            try:
                async with conn.transaction():  # a savepoint
                    status: str = await conn.execute(sql, *args)
            except asyncpg.ForeignKeyViolationError:
                failed.append(table)
                continue
            deleted[table] = deleted.get(table, 0) + int(status.rsplit(" ", 1)[-1])
        if not failed:
            return deleted
        pending = failed
    raise RuntimeError(f"erasure blocked by foreign keys on {pending}")


async def erase_customer(
    pool: asyncpg.Pool, runtime: PresenceRuntime, profiles: ProfileService, customer_id: str
) -> Erased:
    async with runtime.lock, profiles.lock:
        async with pool.acquire() as conn, conn.transaction():
            customers, devices = await subject_ids(conn, customer_id)
            rows = await _delete_all(conn, customers, devices)
            if any(rows.values()):
                counts = [("_customers", 1), *((t, n) for t, n in rows.items() if n)]
                await conn.executemany(
                    "INSERT INTO erasure_counts (day, table_name, rows) VALUES ($1, $2, $3)"
                    " ON CONFLICT (day, table_name)"
                    " DO UPDATE SET rows = erasure_counts.rows + excluded.rows",
                    [(datetime.now(UTC).date(), t, n) for t, n in counts],
                )
        # storage is committed: now memory follows
        engine = runtime.engine
        engine.begin()
        try:
            for cid in customers:
                engine.replace_customer(cid, None, {})
            engine.commit()  # nothing to write: the rows are gone already
        except BaseException:
            engine.rollback()
            raise
        for device in devices:
            if runtime.device_links.get(device) in customers:
                runtime.device_links.pop(device, None)
        metrics.CUSTOMERS_INSIDE.set(engine.customers_inside())
        # the profile state is columnar (slots in arrays): rebuilding it from the database,
        # which no longer holds the customer, is the one way that surely forgets them
        profiles.state = ProfileState(profiles.cfg, ref=profiles.clock())
        await profiles.start()
    erased = Erased(rows)
    if erased.found:
        ERASURES.inc()
    log.info("customer erased: %d rows", sum(rows.values()))  # never the id: it is personal
    return erased
