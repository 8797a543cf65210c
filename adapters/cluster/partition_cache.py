"""Customer -> partition for a whole request at once, in numpy.

The partition is blake2b of the id (geo_engine/partitions.py, ~1 µs a call), so the API keeps
what it computed. A dict did, but a request's fresh id strings looked up one by one in a dict of
tens of thousands of customers cost ~0.4 µs each in a loaded API process (profiled: 200 µs of a
500-fix request), nearly all of it cache misses on the dict's entries and stored keys, which
the interpreter takes one after another. Here the known ids are a sorted table of a cheap hash
of their characters, with the ids themselves beside it: one vectorised search and one
vectorised comparison of the ids found, whose misses overlap. A row the table does not hold
(new, or its hash shared with another id) is computed and kept, and the table rebuilt once
enough are new.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from geo_engine.partitions import partition_of

_LIMIT = 1 << 18  # ids kept, then start again: ~70 MB at most with the table's ids
_WIDTH = 48  # longer ids stay out of the table (its rows are as wide as its longest id)
_NUL = "\x00"  # numpy drops an id's trailing NULs: such ids are looked up one by one (the API
# refuses NUL in ids anyway)
# a random odd weight per character position: the hash is the weighted sum of the code points,
# so the NULs numpy pads a shorter id with add nothing (the same id, the same hash, whatever the
# width of its array); a collision costs a lookup, never a wrong partition
_WEIGHTS = np.random.default_rng(14).integers(0, 2**63, 1024, np.uint64) * 2 + 1


def _hashes(ids: NDArray[np.str_]) -> NDArray[np.uint64]:
    codes = ids.view(np.uint32).reshape(len(ids), -1)  # UCS-4 code points
    h: NDArray[np.uint64] = codes @ _WEIGHTS[: codes.shape[1]]  # modulo 2**64
    return h


class PartitionCache:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._known: dict[str, int] = {}  # every id computed, until the table holds it
        self._keys = np.empty(0, np.uint64)  # sorted hashes of the table's ids
        self._ids = np.empty(0, np.str_)  # the table's ids, in the same order
        self._parts = np.empty(0, np.int32)
        self._fresh = 0  # ids in _known, not yet in the table
        self._missed = 0  # rows looked up one by one since the table was built

    def one(self, customer_id: str) -> int:
        p = self._known.get(customer_id)
        if p is None:
            if len(self._known) >= _LIMIT:
                self._reset()  # bounded: simpler than LRU, and rare
            p = self._known[customer_id] = partition_of(customer_id, self.partitions)
            self._fresh += 1
        return p

    def of(self, customer_ids: list[str]) -> NDArray[np.int32]:
        """Each id's partition."""
        n = len(customer_ids)
        width = max(map(len, customer_ids), default=0)
        if not len(self._keys) or not 0 < width <= len(_WEIGHTS) or _NUL in "".join(customer_ids):
            out = np.fromiter(map(self.one, customer_ids), np.int32, n)
        else:
            ids = np.array(customer_ids, f"<U{width}")  # the width given: numpy skips a pass
            h = _hashes(ids)
            # needles in order: numpy's binary search starts from the previous one's place
            order = np.argsort(h)
            at = np.empty(n, np.intp)
            at[order] = np.searchsorted(self._keys, h[order])
            np.minimum(at, len(self._keys) - 1, out=at)
            hit = self._ids[at] == ids  # the id itself: a shared hash is a miss, not a wrong row
            out = self._parts[at]
            if not hit.all():
                missed = np.flatnonzero(~hit).tolist()
                self._missed += len(missed)
                for i in missed:
                    out[i] = self.one(customer_ids[i])
        # a rebuild costs about as much as looking up as many rows one by one as it holds
        if self._fresh and (
            self._fresh > max(1024, len(self._keys) >> 2) or self._missed > len(self._keys) + 1024
        ):
            self._rebuild()
        return out

    def _rebuild(self) -> None:
        kept = [(c, p) for c, p in self._known.items() if 0 < len(c) <= _WIDTH and _NUL not in c]
        self._fresh = self._missed = 0
        if not kept:
            return
        ids = np.array([c for c, _ in kept], np.str_)
        keys = _hashes(ids)
        order = np.argsort(keys, kind="stable")
        self._keys, self._ids = keys[order], ids[order]
        self._parts = np.array([p for _, p in kept], np.int32)[order]

    def _reset(self) -> None:
        self._known.clear()
        self._keys = np.empty(0, np.uint64)
        self._ids = np.empty(0, np.str_)
        self._parts = np.empty(0, np.int32)
        self._fresh = self._missed = 0
