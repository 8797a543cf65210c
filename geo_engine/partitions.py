"""Partitions of the customer-keyed log and who owns each: pure functions every process computes
alike (the API to route a request, each worker to know its share).

The hash is blake2b, not `hash()`: Python salts `hash()` per process, and a partition must be the
same in every process of every version, for the life of a deployment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def partition_of(customer_id: str, partitions: int) -> int:
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def target_owners(
    workers: Sequence[str], owners: Mapping[int, str | None], partitions: int
) -> dict[int, str]:
    """Partition -> the live worker that should own it: a fair share (each worker gets
    `partitions // n` or one more) that moves as few partitions as it can.

    A partition stays with its current owner while that owner is live and under its quota, so a
    worker joining takes only its share, and a worker leaving hands out only its own partitions.
    Every worker computes this from the same (workers, owners) snapshot and reaches the same plan;
    the leases, not this plan, guarantee one owner at a time."""
    live = sorted(set(workers))
    if not live:
        return {}
    base, extra = divmod(partitions, len(live))
    quota = {w: base + (1 if i < extra else 0) for i, w in enumerate(live)}
    plan: dict[int, str] = {}
    held = dict.fromkeys(live, 0)
    for p in range(partitions):
        w = owners.get(p)
        if w is not None and w in quota and held[w] < quota[w]:
            plan[p] = w
            held[w] += 1
    for p in range(partitions):
        if p in plan:
            continue
        w = min(live, key=lambda x: (held[x] - quota[x], x))
        plan[p] = w
        held[w] += 1
    return plan
