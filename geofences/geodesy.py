"""Distances on the sphere, scalar and vectorized. One copy, used by the index and presence."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), the one H3 uses too

Floats = NDArray[np.float64]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_m_vec(lat1: Floats, lon1: Floats, lat2: Floats, lon2: Floats) -> Floats:
    """Element-wise great-circle distance in metres (arrays broadcast)."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return out


def wrap_lon(dlon: Floats) -> Floats:
    """Bring longitude differences into [-180, 180) so the antimeridian is not a wall."""
    out: Floats = (np.asarray(dlon, dtype=np.float64) + 180.0) % 360.0 - 180.0
    return out


M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0  # along a meridian


def within_m(lat1: float, lon1: float, lat2: float, lon2: float, budget_m: float) -> bool:
    """haversine(p1, p2) <= budget_m, mostly without trigonometry."""
    dlon = abs(lon2 - lon1)
    if dlon > 180.0:
        dlon = 360.0 - dlon
    # along the meridian then along a parallel: a path, so never shorter than the great circle
    if (abs(lat2 - lat1) + dlon) * M_PER_DEG <= budget_m:
        return True
    return haversine_m(lat1, lon1, lat2, lon2) <= budget_m
