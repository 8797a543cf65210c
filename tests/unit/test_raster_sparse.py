"""The raster over fences spread wider than its luxury budget (a city's stores at 100 k fences):
it keeps cells of at most half an H3 edge, sparse (8 x 8 tiles, found through a directory or
a binary search), so it still settles most pings near fences without an H3 cell, each exactly
as its H3 cell would, and matching equals brute force."""

from __future__ import annotations

import numpy as np
import pytest

import geofences.prefilter as prefilter
from geofences.edit import with_fence, without_fence
from geofences.h3cells import M_PER_DEG, latlng_to_cells
from geofences.index import FenceIndex
from geofences.model import Geofence
from geofences.prefilter import EMPTY, NEEDS_H3
from tests.unit.test_index import _feature, _star, brute


def _spread(n: int, seed: int, half_deg: float) -> list[Geofence]:
    """Stores scattered over a square of 2 * half_deg around Paris: circles and stars."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        lat = 48.85 + float(rng.uniform(-half_deg, half_deg))
        lon = 2.35 + float(rng.uniform(-half_deg, half_deg))
        if i % 2:
            geom = {"type": "Point", "coordinates": [lon, lat]}
            out.append(_feature(f"s{i}", geom, float(rng.uniform(30, 200))))
        else:
            ring = _star(lat, lon, float(rng.uniform(40, 300)), 7, rng.uniform(0, 1, 5).tolist())
            out.append(_feature(f"s{i}", {"type": "Polygon", "coordinates": [ring]}))
    return out


def _near(fences: list[Geofence], per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points around each fence's first coordinate, within ~300 m."""
    rng = np.random.default_rng(seed)
    lat, lon = [], []
    for f in fences:
        c = f.geometry["coordinates"]
        x, y = (c if f.radius_m is not None else c[0][0])[:2]
        lat.append(y + rng.uniform(-0.003, 0.003, per))
        lon.append(x + rng.uniform(-0.004, 0.004, per))
    return np.concatenate(lat), np.concatenate(lon)


@pytest.mark.parametrize("directory", [True, False])
def test_wide_sparse_raster_settles_pings_finely_and_exactly(
    monkeypatch: pytest.MonkeyPatch, directory: bool
) -> None:
    # The fences cover more ground than the (shrunk) luxury budget, as 100 k stores do 8 M
    # cells: the raster must still keep cells that settle pings, not fall to coarse ones.
    monkeypatch.setattr(prefilter, "_BUDGET", 1 << 12)
    monkeypatch.setattr(prefilter, "_DIR_SPARSE", 1 << 20 if directory else 0)
    fences = _spread(80, 3, 0.3)
    index = FenceIndex.build(fences)
    r = index._raster
    assert r.settles and M_PER_DEG / r.scale <= r.edge_m / 2
    assert not r.dense and (r.tdir is not None) == directory
    lat, lon = _near(fences, 1_500, 4)
    code = r.codes(lat, lon)
    via_h3 = index._segment_of(latlng_to_cells(lat, lon, index.resolution))
    settled = (code != NEEDS_H3) & (code != EMPTY)
    assert settled.sum() > 0.5 * (via_h3 != EMPTY).sum()
    assert np.array_equal(code[settled], via_h3[settled])
    assert (via_h3[code == EMPTY] == EMPTY).all()
    _assert_brute(index, lat, lon)
    # Edits on the sparse layout: one far away adds tiles (and a new directory), one moves.
    far = _spread(2, 9, 0.001)
    far = [_feature("far", {"type": "Point", "coordinates": [3.2, 49.3]}, 150.0), *far[1:]]
    index = without_fence(with_fence(with_fence(index, far[0]), far[1]), fences[2].id)
    lat2, lon2 = _near([*fences, *far], 400, 5)
    _assert_brute(index, lat2, lon2)
    assert (index._raster.tdir is not None) == directory


def _assert_brute(index: FenceIndex, lat: np.ndarray, lon: np.ndarray) -> None:
    m = index.match(lat, lon)
    got = set(zip(m.ping_idx.tolist(), m.fence_idx.tolist(), strict=True))
    want, ties = brute(list(index.fences), lat, lon)
    assert not (want - got - ties), "false negatives"
    assert not (got - want - ties), "false positives"
