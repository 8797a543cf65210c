"""Fixes as columns: how a batch travels from the API process to its partition owner.

Numbers ride as raw little-endian float64 arrays (NaN = unknown), so the owner reads a run of
requests with `np.frombuffer` instead of building one object per fix (msgpack rows cost about
1 µs a fix to decode; columns cost nothing per fix). Identifiers stay lists of str: PostgreSQL
and the presence state key on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from adapters.codecs.pings import DecodedPings
from geo_engine.batch import FixBatch

F64 = NDArray[np.float64]
F = np.float64
# the array columns of Fixes, each with its element type (take and concat treat them alike)
_COLUMNS = (("row_index", np.int32), ("ts", F), ("lat", F), ("lon", F), ("accuracy_m", F),
            ("speed_mps", F), ("heading", F), ("mock", np.bool_))  # fmt: skip


class Fixes(msgspec.Struct, tag="fixes", array_like=True):
    customer_ids: list[str]  # resolved by the API process
    device_ids: list[str | None]
    row_index: bytes  # int32: each fix's index in its request
    ts: bytes  # float64 unix seconds
    lat: bytes
    lon: bytes
    accuracy_m: bytes  # NaN: unknown
    speed_mps: bytes
    heading: bytes
    mock: bytes  # bool

    def __len__(self) -> int:
        return len(self.customer_ids)

    def floats(self, name: str) -> F64:
        return np.frombuffer(getattr(self, name), np.float64)

    def indexes(self) -> NDArray[np.int32]:
        return np.frombuffer(self.row_index, np.int32)

    def mocks(self) -> NDArray[np.bool_]:
        return np.frombuffer(self.mock, np.bool_)

    def batch(self) -> FixBatch:
        f = self.floats
        return FixBatch(
            self.customer_ids,
            f("ts"),
            f("lat"),
            f("lon"),
            f("accuracy_m"),
            self.mocks(),
            f("speed_mps"),
        )

    def take(self, idx: NDArray[np.intp]) -> Fixes:
        """The fixes at `idx`, in that order."""
        pick = idx.tolist()
        return Fixes(
            [self.customer_ids[i] for i in pick],
            [self.device_ids[i] for i in pick],
            **{name: np.frombuffer(getattr(self, name), kind)[idx].tobytes()
               for name, kind in _COLUMNS},
        )  # fmt: skip


def fixes_of(decoded: DecodedPings, customer_ids: Sequence[str]) -> Fixes:
    """The good rows of a request as columns (customer ids resolved by the caller)."""
    rows = decoded.rows
    n = len(rows)
    nan = math.nan

    def col(values: Iterable[float]) -> bytes:
        return np.fromiter(values, np.float64, n).tobytes()

    return Fixes(
        list(customer_ids),
        [p.device_id for p in rows],
        np.asarray(decoded.row_index, np.int32).tobytes(),
        np.asarray(decoded.ts, np.float64).tobytes(),
        col(p.lat for p in rows),
        col(p.lon for p in rows),
        col(nan if p.accuracy_m is None else p.accuracy_m for p in rows),
        col(nan if p.speed_mps is None else p.speed_mps for p in rows),
        col(nan if p.heading is None else p.heading for p in rows),
        np.fromiter((p.mock for p in rows), np.bool_, n).tobytes(),
    )


def concat(parts: Sequence[Fixes]) -> Fixes:
    """Several commands' fixes as one batch, in order (a run applied in one transaction)."""
    if len(parts) == 1:
        return parts[0]
    return Fixes(
        [c for p in parts for c in p.customer_ids],
        [d for p in parts for d in p.device_ids],
        **{name: b"".join(getattr(p, name) for p in parts) for name, _ in _COLUMNS},
    )


def optional(values: F64) -> list[float | None]:
    """NaN back to None (what storage and the API say for unknown)."""
    return [None if v != v else v for v in values.tolist()]
