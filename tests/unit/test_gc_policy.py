"""Full garbage collections on a schedule (adapters/gc_policy.py): never automatic while the
schedule runs, a cycle still collected by the next scheduled one, Python's thresholds back
when it stops."""

from __future__ import annotations

import asyncio
import gc
import weakref

from adapters import gc_policy


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


async def test_full_collections_run_on_the_schedule_only() -> None:
    before = gc.get_threshold()
    task = asyncio.create_task(gc_policy.full_collections_forever(0.05))
    await asyncio.sleep(0)
    try:
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] > 10**9  # no automatic full collection
        node = _Node()
        gone = weakref.ref(node)
        gc.collect(1)  # now in the oldest generation: only a full collection frees it
        del node
        gc.collect(1)
        assert gone() is not None
        for _ in range(100):  # bounded: the next scheduled collection frees the cycle
            if gone() is None:
                break
            await asyncio.sleep(0.02)
        assert gone() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == (before[0], before[1], 10)


async def test_zero_keeps_pythons_own_collections() -> None:
    before = gc.get_threshold()
    await gc_policy.full_collections_forever(0)
    assert gc.get_threshold() == before
