"""Fixes as columns: how a batch travels from the API process to its partition owner.

Numbers ride as raw little-endian float64 arrays (NaN = unknown), so the owner reads a run of
requests with `np.frombuffer` instead of building one object per fix (msgpack rows cost about
1 µs a fix to decode; columns cost nothing per fix). Identifiers stay lists of str: PostgreSQL
and the presence state key on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

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


def _floats(values: list[float | None]) -> F64:
    """A float64 column, None as NaN; an optional field is mostly all absent or all given."""
    absent = values.count(None)
    if absent == 0:
        return np.array(values, F)
    if absent == len(values):
        return np.full(absent, np.nan)
    return np.array([np.nan if v is None else v for v in values], F)


def _columns(decoded: DecodedPings) -> tuple[list[str | None], list[NDArray[np.generic]]]:
    """(device ids, the array columns in _COLUMNS order) of the good rows."""
    rows = decoded.rows
    arrays: list[NDArray[np.generic]] = [
        np.array(decoded.row_index, np.int32),
        np.array(decoded.ts, F),
        np.array([p.lat for p in rows], F),
        np.array([p.lon for p in rows], F),
        _floats([p.accuracy_m for p in rows]),
        _floats([p.speed_mps for p in rows]),
        _floats([p.heading for p in rows]),
        np.array([p.mock for p in rows], np.bool_),
    ]
    return [p.device_id for p in rows], arrays


def fixes_of(decoded: DecodedPings, customer_ids: Sequence[str]) -> Fixes:
    """The good rows of a request as columns (customer ids resolved by the caller)."""
    dev, arrays = _columns(decoded)
    return Fixes(list(customer_ids), dev, *(a.tobytes() for a in arrays))


def fixes_by_part(
    decoded: DecodedPings, customer_ids: Sequence[str], parts: NDArray[np.int32]
) -> dict[int, Fixes]:
    """The good rows split by `parts` (each row's partition), in request order within each:
    every column sorted once, then cut, rather than gathered once per partition."""
    if len(parts) == 0:
        return {}
    if (parts == parts[0]).all():
        return {int(parts[0]): fixes_of(decoded, customer_ids)}
    dev, arrays = _columns(decoded)
    order = np.argsort(parts, kind="stable")
    pick = order.tolist()
    cids = [customer_ids[i] for i in pick]
    devs = [dev[i] for i in pick]
    owner = parts[order]
    cuts = [0, *(np.flatnonzero(owner[1:] != owner[:-1]) + 1).tolist(), len(pick)]
    # each column sorted into bytes once, then cut as bytes: a slice of bytes costs less than
    # a numpy slice and its tobytes, for each of 8 columns and ~16 partitions
    columns = [(a[order].tobytes(), a.itemsize) for a in arrays]
    return {
        int(owner[a]): Fixes(
            cids[a:b], devs[a:b], *(col[a * size : b * size] for col, size in columns)
        )
        for a, b in pairwise(cuts)
    }


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
