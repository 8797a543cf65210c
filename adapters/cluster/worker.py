"""A partition owner: takes its fair share of the partitions, applies each one's commands in
order through the services, and commits every command's effects with its log position.

    every heartbeat: renew leases -> drop the partitions taken over -> fair share of the live
    workers (geo_engine/partitions.py) -> hand over the surplus, acquire the missing -> when
    the set changed, memory resyncs from storage (presence, profiles) before consuming

Consuming is adapters/cluster/consume.py. A command is applied under its position
(adapters/cluster/checkpoint.py): the transaction that commits its effects also moves the
partition's applied sequence, fenced by the lease's epoch. Only then is it acked and answered.
After a crash or a takeover the owner resumes right after the committed sequence: effects once,
whatever the bus redelivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.assembly import Engine
from adapters.bus.nats_bus import NatsBus
from adapters.cluster.checkpoint import Position
from adapters.cluster.consume import Owned, PartitionConsumer
from adapters.cluster.handlers import CommandHandlers
from adapters.cluster.metrics import OWNED
from geo_engine.cluster_ports import PartitionLeases, WorkerInfo
from geo_engine.partitions import partition_of, target_owners
from geo_engine.ports import Transactions

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    partitions: int
    lease_ttl_s: float = 5.0
    heartbeat_s: float = 1.0
    batch: int = 256  # messages fetched at once per partition: the most a group commit holds
    linger_s: float = 0.0  # after a trickle batch, before the next fetch (settings.py says why)


class PartitionWorker:
    def __init__(
        self,
        *,
        bus: NatsBus,
        leases: PartitionLeases,
        engine: Engine,
        handlers: CommandHandlers,
        transactions: Transactions,  # the checkpointed ones the services use
        config: WorkerConfig,
        worker_id: str | None = None,
        reads: Callable[[bytes], Awaitable[bytes]] | None = None,
    ) -> None:
        """`reads`: what this owner answers about its customers (the profile document)."""
        self.bus = bus
        self.leases = leases
        self.engine = engine
        self.cfg = config
        self.info = WorkerInfo(worker_id or new_worker_id(), socket.gethostname(), os.getpid())
        self.reads = reads
        self.owned: dict[int, Owned] = {}
        self.lags: dict[int, int] = {}
        self.consumer = PartitionConsumer(
            bus=bus,
            leases=leases,
            engine=engine,
            handlers=handlers,
            transactions=transactions,
            batch=config.batch,
            linger_s=config.linger_s,
            lags=self.lags,
        )
        self._loop: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()

    @property
    def worker_id(self) -> str:
        return self.info.worker_id

    def owns(self, customer_id: str) -> bool:
        return partition_of(customer_id, self.cfg.partitions) in self.owned

    def epochs(self) -> list[Position]:
        """The owned partitions at their applied sequence: what fences work that consumes no
        message (the sweeps) — their transactions fail once a partition moved on."""
        return [Position(p, o.epoch, o.applied) for p, o in sorted(self.owned.items())]

    # -- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.leases.configure(self.cfg.partitions)
        await self.tick()
        self._loop = asyncio.create_task(self._run())
        self._beat = asyncio.create_task(self._beat_forever())

    async def stop(self) -> None:
        for task in (self._loop, self._beat):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stop_consumers(list(self.owned))
        self.owned.clear()
        with contextlib.suppress(Exception):  # a clean exit hands over at once, else by expiry
            await self.leases.leave(self.worker_id)

    async def _beat_forever(self) -> None:
        """Renewal on its own beat: a slow rebalance (stopping consumers, re-reading storage)
        must not let this worker's liveness and leases lapse while it runs."""
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            lags = {p: self.lags[p] for p in self.owned if p in self.lags}  # known ones
            try:
                await self.leases.heartbeat(self.info, self.cfg.lease_ttl_s, lags)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            try:
                await self.tick()
            except Exception as exc:  # the database or the bus away: keep trying
                log.warning("ownership tick failed: %s", exc)

    # -- ownership -----------------------------------------------------------------------
    async def tick(self) -> None:
        async with self._tick_lock:
            cfg = self.cfg
            lags = {p: self.lags[p] for p in self.owned if p in self.lags}  # known ones
            held = await self.leases.heartbeat(self.info, cfg.lease_ttl_s, lags)
            lost = [p for p, o in self.owned.items() if held.get(p) != o.epoch]
            if lost:
                log.warning("partitions taken over: %s", lost)
                await self._stop_consumers(lost)
            workers = await self.leases.live_workers(cfg.lease_ttl_s)
            if self.worker_id not in workers:
                workers.append(self.worker_id)
            plan = target_owners(workers, await self.leases.owners(), cfg.partitions)
            surplus = [p for p in self.owned if plan.get(p) != self.worker_id]
            if surplus:
                await self._stop_consumers(surplus)
                for p in surplus:
                    o = self.owned.pop(p)
                    await self.leases.release(self.worker_id, p, o.epoch)
                log.info("partitions handed over: %s", surplus)
            gained: list[int] = []
            for p, w in sorted(plan.items()):
                if w == self.worker_id and p not in self.owned:
                    lease = await self.leases.acquire(self.worker_id, p, cfg.lease_ttl_s)
                    if lease is not None:
                        self.owned[p] = Owned(lease.epoch, lease.applied_seq)
                        self.lags.pop(p, None)  # unknown until its first fetch
                        gained.append(p)
            for p in lost:
                self.owned.pop(p, None)
            if lost or surplus or gained:
                # memory holds exactly the owned partitions' customers, as storage has them
                try:
                    await self.engine.uow.resync(self.owns)
                    await self.engine.profiles.reload()
                except BaseException:  # not consumed from stale memory: given back, retaken later
                    for p in gained:
                        o = self.owned.pop(p)
                        with contextlib.suppress(Exception):
                            await self.leases.release(self.worker_id, p, o.epoch)
                    raise
            for p in gained:
                o = self.owned[p]
                o.task = asyncio.create_task(self.consumer.run(p, o))
                if self.reads is not None:
                    o.stop_reads = await self.bus.serve_reads(p, self.reads)
            if gained:
                log.info("partitions acquired: %s", gained)
            OWNED.set(len(self.owned))

    async def _stop_consumers(self, partitions: list[int]) -> None:
        tasks = []
        for p in partitions:
            o = self.owned.get(p)
            if o is not None and o.stop_reads is not None:
                await o.stop_reads()
                o.stop_reads = None
            if o is None or o.task is None:
                continue
            o.stop.set()
            tasks.append(o.task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.cfg.lease_ttl_s)
            for t in pending:  # stuck on I/O: its commit is fenced anyway
                t.cancel()
