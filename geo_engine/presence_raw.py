"""A batch's raw fixes as columns: what `PresenceCommit.raw_fixes` carries from the hot path.

The PostgreSQL store builds its binary COPY straight from these arrays (adapters/db/pgcopy.py),
so keeping a batch's fixes costs no Python object per fix. It is still a `Sequence[RawFix]`
(a row is built only when one is read): the memory store, the tests and any caller that
iterates see the same fixes as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import NDArray

from geo_engine.ports import RawFix

F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RawFixColumns(Sequence[RawFix]):
    """Every fix as received, with its flag; NaN in the optional float columns = unknown."""

    customer_ids: Sequence[str]
    device_ids: Sequence[str | None]
    ts: F64  # unix seconds
    lat: F64
    lon: F64
    accuracy_m: F64
    speed_mps: F64
    heading: F64
    mock: NDArray[np.bool_]
    flags: Sequence[str | None]

    @classmethod
    def of(cls, fixes: Sequence[RawFix]) -> RawFixColumns:
        """Rows as columns (the store's one COPY path also serves callers that built rows)."""
        if isinstance(fixes, RawFixColumns):
            return fixes
        n = len(fixes)

        def col(values: Iterator[float | None]) -> F64:
            return np.fromiter((np.nan if v is None else v for v in values), np.float64, n)

        return cls(
            [f.customer_id for f in fixes],
            [f.device_id for f in fixes],
            col(f.ts for f in fixes),
            col(f.lat for f in fixes),
            col(f.lon for f in fixes),
            col(f.accuracy_m for f in fixes),
            col(f.speed_mps for f in fixes),
            col(f.heading for f in fixes),
            np.fromiter((f.mock for f in fixes), np.bool_, n),
            [f.flag for f in fixes],
        )

    def __len__(self) -> int:
        return len(self.customer_ids)

    @overload
    def __getitem__(self, i: int) -> RawFix: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[RawFix]: ...

    def __getitem__(self, i: int | slice) -> RawFix | Sequence[RawFix]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return RawFix(
            self.customer_ids[i],
            self.device_ids[i],
            float(self.ts[i]),
            float(self.lat[i]),
            float(self.lon[i]),
            _known(self.accuracy_m[i]),
            _known(self.speed_mps[i]),
            _known(self.heading[i]),
            bool(self.mock[i]),
            _text(self.flags[i]),
        )


def _text(v: str | None) -> str | None:
    return None if v is None else str(v)  # a str subclass (a FixFlag) as its plain value


def _known(v: np.float64) -> float | None:
    return None if v != v else float(v)
