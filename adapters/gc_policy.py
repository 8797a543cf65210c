"""The cyclic garbage collector on a schedule.

An owner keeps a cursor object per customer and replaces it on every fix, so under a steady
load Python's automatic full (generation 2) collections come every few seconds and each walks
every customer's objects. In a 3-minute soak with 200 k customers (gc.callbacks in the engine)
that was 27 full collections of up to 0.6 s: the p99. Here a full collection is never automatic:
one runs every `every_s` (the cyclic garbage waiting for it is bounded by what that interval
makes), and generations 0 and 1 keep Python's thresholds (young objects, ~a millisecond each).
"""

from __future__ import annotations

import asyncio
import gc
import time

from adapters import metrics

_NEVER = 2**31 - 1  # gen-1 collections before an automatic full one (CPython 3.11, 3.12)


def settle() -> None:
    """What start loaded (fence index, presence and profile state, the campaign book) out of
    every later collection: it lives as long as the process."""
    gc.collect()
    gc.freeze()


async def full_collections_forever(every_s: float) -> None:
    if every_s <= 0:
        return  # Python's automatic full collections (GEO_ENGINE_GC_FULL_EVERY_S=0)
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    try:
        while True:
            await asyncio.sleep(every_s)
            t0 = time.perf_counter()
            gc.collect(2)
            metrics.GC_FULL_SECONDS.observe(time.perf_counter() - t0)
    finally:
        gc.set_threshold(young, middle, 10)
