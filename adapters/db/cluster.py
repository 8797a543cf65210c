"""PartitionLeases on PostgreSQL: leases timed by the server's clock (one clock for every
worker), fenced by the epoch in every commit (geo_engine/cluster_ports.py)."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from adapters.db.tx import conn_of
from geo_engine.cluster_ports import (
    Fenced,
    Lease,
    PartitionCountMismatch,
    PartitionRow,
    WorkerInfo,
    WorkerRow,
)
from geo_engine.ports import Tx

_HEARTBEAT_WORKER = """
INSERT INTO cluster_workers (worker_id, host, pid) VALUES ($1, $2, $3)
ON CONFLICT (worker_id) DO UPDATE SET seen_at = now()
"""

# extends the leases still held; a lease taken over has another owner and is not returned.
# Rows are locked in partition order, as a sweep's fenced transaction locks them: two
# transactions taking the same rows in the same order cannot deadlock
_RENEW = """
WITH mine AS (
    SELECT partition FROM partition_leases WHERE owner = $1 ORDER BY partition FOR UPDATE
)
UPDATE partition_leases l SET expires_at = now() + make_interval(secs => $2),
    lag = coalesce(g.lag, l.lag), updated_at = now()
FROM mine LEFT JOIN unnest($3::int4[], $4::int8[]) AS g(partition, lag) USING (partition)
WHERE l.partition = mine.partition
RETURNING l.partition, l.epoch
"""

_ACQUIRE = """
UPDATE partition_leases SET owner = $1, epoch = epoch + 1,
    expires_at = now() + make_interval(secs => $3), lag = NULL, updated_at = now()
WHERE partition = $2 AND (owner IS NULL OR owner = $1 OR expires_at < now())
RETURNING epoch, applied_seq
"""


class PgPartitionLeases:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def configure(self, partitions: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE cluster_config IN EXCLUSIVE MODE")
            found = await conn.fetchval("SELECT value FROM cluster_config WHERE key = 'partitions'")
            if found is not None and int(found) != partitions:
                raise PartitionCountMismatch(
                    f"GEO_ENGINE_PARTITIONS={partitions}, but this deployment has {found}"
                    " partitions: the count is fixed once data exists"
                )
            if found is None:
                await conn.execute(
                    "INSERT INTO cluster_config (key, value) VALUES ('partitions', $1)",
                    str(partitions),
                )
            await conn.execute(
                "INSERT INTO partition_leases (partition) SELECT generate_series(0, $1 - 1)"
                " ON CONFLICT DO NOTHING",
                partitions,
            )

    async def heartbeat(
        self, worker: WorkerInfo, ttl_s: float, lags: Mapping[int, int]
    ) -> dict[int, int]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_HEARTBEAT_WORKER, worker.worker_id, worker.host, worker.pid)
            rows = await conn.fetch(
                _RENEW, worker.worker_id, ttl_s, list(lags), list(lags.values())
            )
        return {r["partition"]: r["epoch"] for r in rows}

    async def live_workers(self, ttl_s: float) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT worker_id FROM cluster_workers"
            " WHERE seen_at > now() - make_interval(secs => $1) ORDER BY worker_id",
            ttl_s,
        )
        return [r["worker_id"] for r in rows]

    async def owners(self) -> dict[int, str | None]:
        rows = await self._pool.fetch(
            "SELECT partition, CASE WHEN expires_at > now() THEN owner END AS owner"
            " FROM partition_leases"
        )
        return {r["partition"]: r["owner"] for r in rows}

    async def acquire(self, worker_id: str, partition: int, ttl_s: float) -> Lease | None:
        row = await self._pool.fetchrow(_ACQUIRE, worker_id, partition, ttl_s)
        return None if row is None else Lease(partition, row["epoch"], row["applied_seq"])

    async def release(self, worker_id: str, partition: int, epoch: int) -> None:
        await self._pool.execute(
            "UPDATE partition_leases SET owner = NULL, expires_at = NULL, updated_at = now()"
            " WHERE partition = $1 AND owner = $2 AND epoch = $3",
            partition,
            worker_id,
            epoch,
        )

    async def leave(self, worker_id: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE partition_leases SET owner = NULL, expires_at = NULL, updated_at = now()"
                " WHERE owner = $1",
                worker_id,
            )
            await conn.execute("DELETE FROM cluster_workers WHERE worker_id = $1", worker_id)

    async def advance(self, tx: Tx, partition: int, epoch: int, seq: int) -> None:
        # the row lock orders this against a takeover's epoch bump: whichever commits second
        # sees the other (READ COMMITTED re-reads the row), so a stale epoch never commits
        done = await conn_of(tx).fetchval(
            "UPDATE partition_leases SET applied_seq = greatest(applied_seq, $3)"
            " WHERE partition = $1 AND epoch = $2 RETURNING 1",
            partition,
            epoch,
            seq,
        )
        if done is None:
            raise Fenced(partition, epoch)

    async def applied_seq(self, partition: int) -> int:
        seq = await self._pool.fetchval(
            "SELECT applied_seq FROM partition_leases WHERE partition = $1", partition
        )
        return int(seq or 0)

    async def park(self, tx: Tx, partition: int, seq: int, payload: bytes, error: str) -> None:
        await conn_of(tx).execute(
            "INSERT INTO ingest_dead_letters (partition, seq, payload, error)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (partition, seq) DO NOTHING",
            partition,
            seq,
            payload,
            error,
        )

    async def status(self) -> tuple[list[WorkerRow], list[PartitionRow]]:
        async with self._pool.acquire() as conn:
            workers = await conn.fetch(
                "SELECT worker_id, host, pid, extract(epoch FROM started_at) AS started,"
                " extract(epoch FROM seen_at) AS seen FROM cluster_workers ORDER BY worker_id"
            )
            parts = await conn.fetch(
                "SELECT partition, CASE WHEN expires_at > now() THEN owner END AS owner, epoch,"
                " applied_seq, lag FROM partition_leases ORDER BY partition"
            )
        return (
            [
                WorkerRow(
                    r["worker_id"], r["host"], r["pid"], float(r["started"]), float(r["seen"])
                )
                for r in workers
            ],
            [
                PartitionRow(r["partition"], r["owner"], r["epoch"], r["applied_seq"], r["lag"])
                for r in parts
            ],
        )
