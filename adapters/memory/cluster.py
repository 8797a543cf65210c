"""PartitionLeases in memory, same contract as PostgreSQL (adapters/db/cluster.py; the suite
tests/contract/test_partition_leases.py). Time is `clock()` (seconds), as the server's now() is
there; `advance` is journalled in its memory transaction (adapters/memory/tx.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from adapters.memory.tx import journal_of
from geo_engine.cluster_ports import (
    Fenced,
    Lease,
    PartitionCountMismatch,
    PartitionRow,
    WorkerInfo,
    WorkerRow,
)
from geo_engine.ports import Tx


@dataclass(slots=True)
class _Lease:
    owner: str | None = None
    epoch: int = 0
    expires_at: float | None = None
    applied_seq: int = 0
    lag: int | None = None


class MemoryPartitionLeases:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.partitions: int | None = None
        self.leases: dict[int, _Lease] = {}
        self.workers: dict[str, WorkerRow] = {}
        self.parked: dict[tuple[int, int], tuple[bytes, str]] = {}  # dead letters

    async def configure(self, partitions: int) -> None:
        if self.partitions is not None and self.partitions != partitions:
            raise PartitionCountMismatch(
                f"GEO_ENGINE_PARTITIONS={partitions}, but this deployment has {self.partitions}"
                " partitions: the count is fixed once data exists"
            )
        self.partitions = partitions
        for p in range(partitions):
            self.leases.setdefault(p, _Lease())

    async def heartbeat(
        self, worker: WorkerInfo, ttl_s: float, lags: Mapping[int, int]
    ) -> dict[int, int]:
        now = self.clock()
        seen = self.workers.get(worker.worker_id)
        self.workers[worker.worker_id] = (
            WorkerRow(worker.worker_id, worker.host, worker.pid, now, now)
            if seen is None
            else replace(seen, seen_at=now)  # as PostgreSQL: host and pid kept from the first
        )
        held: dict[int, int] = {}
        for p, lease in self.leases.items():
            if lease.owner == worker.worker_id:
                lease.expires_at = now + ttl_s
                lease.lag = lags.get(p, lease.lag)
                held[p] = lease.epoch
        return held

    async def live_workers(self, ttl_s: float) -> list[str]:
        since = self.clock() - ttl_s
        return sorted(w for w, row in self.workers.items() if row.seen_at > since)

    async def owners(self) -> dict[int, str | None]:
        now = self.clock()
        return {p: self._owner(lease, now) for p, lease in self.leases.items()}

    async def acquire(self, worker_id: str, partition: int, ttl_s: float) -> Lease | None:
        now = self.clock()
        lease = self.leases.get(partition)
        if lease is None:
            return None
        expired = lease.expires_at is not None and lease.expires_at < now
        if lease.owner not in (None, worker_id) and not expired:
            return None
        lease.owner, lease.epoch = worker_id, lease.epoch + 1
        lease.expires_at, lease.lag = now + ttl_s, None
        return Lease(partition, lease.epoch, lease.applied_seq)

    async def release(self, worker_id: str, partition: int, epoch: int) -> None:
        lease = self.leases.get(partition)
        if lease is not None and lease.owner == worker_id and lease.epoch == epoch:
            lease.owner = lease.expires_at = None

    async def leave(self, worker_id: str) -> None:
        for lease in self.leases.values():
            if lease.owner == worker_id:
                lease.owner = lease.expires_at = None
        self.workers.pop(worker_id, None)

    async def advance(self, tx: Tx, partition: int, epoch: int, seq: int) -> None:
        journal = journal_of(tx)
        lease = self.leases.get(partition)
        if lease is None or lease.epoch != epoch:
            raise Fenced(partition, epoch)
        held, before = lease, lease.applied_seq
        held.applied_seq = max(before, seq)

        def undo() -> None:
            held.applied_seq = before

        if journal is not None:
            journal.on_rollback(undo)

    async def applied_seq(self, partition: int) -> int:
        lease = self.leases.get(partition)
        return 0 if lease is None else lease.applied_seq

    async def park(self, tx: Tx, partition: int, seq: int, payload: bytes, error: str) -> None:
        key = (partition, seq)
        if key in self.parked:
            return
        self.parked[key] = (payload, error)

        def undo() -> None:
            self.parked.pop(key, None)

        journal = journal_of(tx)
        if journal is not None:
            journal.on_rollback(undo)

    async def status(self) -> tuple[list[WorkerRow], list[PartitionRow]]:
        now = self.clock()
        return (
            [self.workers[w] for w in sorted(self.workers)],
            [
                PartitionRow(p, self._owner(lease, now), lease.epoch, lease.applied_seq, lease.lag)
                for p, lease in sorted(self.leases.items())
            ],
        )

    @staticmethod
    def _owner(lease: _Lease, now: float) -> str | None:
        return lease.owner if lease.expires_at is not None and lease.expires_at > now else None
