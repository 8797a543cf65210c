"""`GET /v1/cluster`: partitions, live workers and what each owns, lag per partition."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES
from adapters.auth import Principal, Role

router = APIRouter(prefix="/v1", tags=["operations"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class WorkerOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    live: bool = Field(description="Heartbeat within the lease ttl")
    started_at: datetime
    seen_at: datetime
    partitions: list[int]


class PartitionOut(BaseModel):
    partition: int
    owner: str | None = Field(description="None: free or its lease expired (being taken over)")
    epoch: int = Field(description="Changes of owner so far: commits carry it (fencing)")
    applied_seq: int = Field(description="Stream sequence of the last applied command")
    lag: int | None = Field(description="Messages after it, as its owner last reported")
    head_seq: int | None = Field(
        description="Stream sequence of the partition's last command (None: the bus is away)"
    )
    caught_up: bool | None = Field(description="applied_seq reached head_seq")


class ClusterOut(BaseModel):
    partitions: int
    stream: str
    bus_connected: bool
    messages_in_stream: int | None
    workers: list[WorkerOut]
    leases: list[PartitionOut]


@router.get("/cluster", response_model=ClusterOut, summary="Partitions, workers, lag")
async def cluster(svc: Svc, _: Admin) -> ClusterOut:
    s = svc.settings
    workers, parts = await svc.leases.status()
    now = time.time()
    owned: dict[str, list[int]] = {}
    for p in parts:
        if p.owner is not None:
            owned.setdefault(p.owner, []).append(p.partition)
    try:
        held: int | None = await svc.bus.pending()
        heads: list[int | None] = list(await svc.bus.head_seqs(s.partitions))
    except Exception:  # the bus away: the rest still answers
        held, heads = None, [None] * s.partitions
    return ClusterOut(
        partitions=s.partitions,
        stream=svc.bus.stream,
        bus_connected=svc.bus.connected,
        messages_in_stream=held,
        workers=[
            WorkerOut(
                worker_id=w.worker_id,
                host=w.host,
                pid=w.pid,
                live=now - w.seen_at <= s.lease_ttl_s,
                started_at=datetime.fromtimestamp(w.started_at, UTC),
                seen_at=datetime.fromtimestamp(w.seen_at, UTC),
                partitions=owned.get(w.worker_id, []),
            )
            for w in workers
        ],
        leases=[
            PartitionOut(
                partition=p.partition,
                owner=p.owner,
                epoch=p.epoch,
                applied_seq=p.applied_seq,
                lag=p.lag,
                head_seq=heads[p.partition],
                caught_up=_caught_up(p.applied_seq, heads[p.partition]),
            )
            for p in parts
        ],
    )


def _caught_up(applied: int, head: int | None) -> bool | None:
    return None if head is None else applied >= head
