"""The partition leases port: which worker owns which partition of the log, with fencing.

PostgreSQL: adapters/db/cluster.py; memory: adapters/memory/cluster.py; one contract suite
(tests/contract/test_partition_leases.py) runs on both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from geo_engine.ports import Tx


class Fenced(Exception):
    """A commit refused: the partition's lease moved to another owner (a newer epoch)."""

    def __init__(self, partition: int, epoch: int) -> None:
        super().__init__(f"partition {partition}: epoch {epoch} is no longer the owner's")
        self.partition = partition
        self.epoch = epoch


class PartitionCountMismatch(Exception):
    """GEO_ENGINE_PARTITIONS differs from the deployment's: customers would change partition
    and their order would be lost."""


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    epoch: int
    applied_seq: int  # the last stream sequence whose effects are committed


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class WorkerRow:
    worker_id: str
    host: str
    pid: int
    started_at: float
    seen_at: float


@dataclass(frozen=True, slots=True)
class PartitionRow:
    partition: int
    owner: str | None  # None: free, or its lease expired
    epoch: int
    applied_seq: int
    lag: int | None  # messages in the stream after applied_seq, as the owner last saw it


class PartitionLeases(Protocol):
    async def configure(self, partitions: int) -> None:
        """Create the leases of a new deployment; raise PartitionCountMismatch on a change."""
        ...

    async def heartbeat(
        self, worker: WorkerInfo, ttl_s: float, lags: Mapping[int, int]
    ) -> dict[int, int]:
        """Mark the worker alive, extend its leases and record their lag; return the partitions
        it still holds (partition -> epoch): one missing was taken over."""
        ...

    async def live_workers(self, ttl_s: float) -> list[str]: ...

    async def owners(self) -> dict[int, str | None]:
        """Partition -> owner of an unexpired lease, or None."""
        ...

    async def acquire(self, worker_id: str, partition: int, ttl_s: float) -> Lease | None:
        """Take a free or expired lease with a new epoch; None when another worker holds it."""
        ...

    async def release(self, worker_id: str, partition: int, epoch: int) -> None: ...

    async def leave(self, worker_id: str) -> None:
        """Release every lease of the worker and forget it (a clean shutdown)."""
        ...

    async def advance(self, tx: Tx, partition: int, epoch: int, seq: int) -> None:
        """Record `seq` as applied, in the transaction of its effects; raise Fenced when the
        epoch is no longer the partition's."""
        ...

    async def applied_seq(self, partition: int) -> int:
        """The partition's committed position (read after a commit of unknown outcome)."""
        ...

    async def park(self, tx: Tx, partition: int, seq: int, payload: bytes, error: str) -> None:
        """Keep a command that could not be applied (a dead letter), in the transaction that
        moves the partition past it."""
        ...

    async def status(self) -> tuple[list[WorkerRow], list[PartitionRow]]: ...
