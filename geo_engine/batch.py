"""A batch of fixes as column arrays: what decoders produce and the pipeline consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class FixBatch:
    """Column arrays of one batch; accuracy and speed use NaN for unknown."""

    customer_ids: list[str]
    ts: NDArray[np.float64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    accuracy_m: NDArray[np.float64]
    mock: NDArray[np.bool_]
    speed_mps: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.customer_ids)
