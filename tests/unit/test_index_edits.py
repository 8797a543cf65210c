"""Fence edits on a live index (geofences/edit.py): after any sequence of adds, replacements and
deletions, matching equals shapely brute force and a from-scratch build, every position names
the right fence, and an index held before an edit still answers as it did."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofences.edit import with_fence, without_fence
from geofences.index import FenceIndex
from geofences.model import Geofence
from tests.unit.test_index import _feature, brute, fences_and_points

Case = tuple[list[Geofence], np.ndarray, np.ndarray]


def _pairs(index: FenceIndex, lat: np.ndarray, lon: np.ndarray) -> set[tuple[int, str]]:
    m = index.match(lat, lon)
    assert np.all(np.diff(m.ping_idx) >= 0)
    return {
        (p, index.fences[f].id)
        for p, f in zip(m.ping_idx.tolist(), m.fence_idx.tolist(), strict=True)
    }


def _check(index: FenceIndex, live: dict[str, Geofence], lat: np.ndarray, lon: np.ndarray) -> None:
    assert len(index) == len(live)
    assert {f.id for f in index.fences} == set(live)
    for fid, fence in live.items():
        pos = index.position(fid)
        assert pos is not None and index.fences[pos] is fence
    got = _pairs(index, lat, lon)
    want, ties = brute(list(index.fences), lat, lon)
    named = {(p, index.fences[j].id) for p, j in want}
    tie_named = {(p, index.fences[j].id) for p, j in ties}
    assert not (named - got - tie_named), "false negatives"
    assert not (got - named - tie_named), "false positives"
    scratch = FenceIndex.build(list(live.values()), index.resolution)
    assert got ^ _pairs(scratch, lat, lon) <= tie_named
    # depth_m by position agrees with the from-scratch index (circles by formula, polygons
    # by the same edges).
    rows = np.arange(0, lat.size, 5)
    for fid in list(live)[:3]:
        a = index.depth_m(np.full(rows.size, index.position(fid), np.int32), lat[rows], lon[rows])
        pos = scratch.position(fid)
        b = scratch.depth_m(np.full(rows.size, pos, np.int32), lat[rows], lon[rows])
        assert np.allclose(a, b, atol=1e-6)


def _renamed(f: Geofence, fid: str) -> Geofence:
    return dataclasses.replace(f, id=fid, name=fid)


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "replace", "delete"]), st.integers(0, 99), st.integers(0, 99)
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fences_and_points(), fences_and_points(), ops, st.integers(0, 6), st.sampled_from([11, 12]))
def test_edits_match_brute_force_and_a_fresh_build(
    case: Case, other: Case, steps: list[tuple[str, int, int]], start: int, res: int
) -> None:
    pool, lat, lon = case
    extra, lat2, lon2 = other
    lat, lon = np.concatenate([lat, lat2]), np.concatenate([lon, lon2])
    shapes = pool + extra  # replacement geometries: nearby ones and ones far away
    live = {f.id: f for f in pool[:start]}
    index = FenceIndex.build(list(live.values()), res)
    made = 0
    for kind, a, b in steps:
        before, seen = index, _pairs(index, lat, lon)
        if kind == "add" or not live:
            made += 1
            fence = _renamed(shapes[a % len(shapes)], f"new{made}")
            index = with_fence(index, fence)
            live[fence.id] = fence
        elif kind == "replace":
            fid = sorted(live)[a % len(live)]
            fence = _renamed(shapes[b % len(shapes)], fid)
            index = with_fence(index, fence)
            live[fid] = fence
        else:
            fid = sorted(live)[a % len(live)]
            index = without_fence(index, fid)
            del live[fid]
        assert index is not before
        assert _pairs(before, lat, lon) == seen, "an edit changed the index a reader holds"
    _check(index, live, lat, lon)


def test_delete_moves_the_last_fence_into_the_slot() -> None:
    fs = [
        _feature(f"c{i}", {"type": "Point", "coordinates": [2.35 + i * 0.01, 48.85]}, 300)
        for i in range(4)
    ]
    index = FenceIndex.build(fs)
    smaller = without_fence(index, "c1")
    assert [f.id for f in smaller.fences] == ["c0", "c3", "c2"]
    assert smaller.position("c3") == 1 and smaller.position("c1") is None
    m = smaller.match(np.array([48.85, 48.85]), np.array([2.38, 2.36]))
    assert [smaller.fences[i].id for i in m.fence_idx.tolist()] == ["c3"]
    assert without_fence(smaller, "c1") is smaller  # unknown id: nothing to do
    # the old index is untouched
    assert index.position("c1") == 1 and len(index) == 4


def test_edits_from_empty_and_back() -> None:
    index = FenceIndex.build([])
    c = _feature("c", {"type": "Point", "coordinates": [2.35, 48.85]}, 200)
    p = _feature(
        "p",
        {
            "type": "Polygon",
            "coordinates": [[[2.36, 48.85], [2.362, 48.85], [2.362, 48.852], [2.36, 48.85]]],
        },
    )
    index = with_fence(with_fence(index, c), p)
    m = index.match(np.array([48.85, 48.8505, 10.0]), np.array([2.35, 2.3615, 10.0]))
    assert [index.fences[i].id for i in m.fence_idx.tolist()] == ["c", "p"]
    index = without_fence(without_fence(index, "c"), "p")
    assert len(index) == 0 and len(index.match(np.array([48.85]), np.array([2.35]))) == 0


def _city(n: int, seed: int, lat0: float = 48.85, lon0: float = 2.35) -> list[Geofence]:
    """Stores packed in a 3 km square: circles and stars, so edits split shared segments."""
    from tests.unit.test_index import _star

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        lat = lat0 + float(rng.uniform(-0.015, 0.015))
        lon = lon0 + float(rng.uniform(-0.02, 0.02))
        if i % 2:
            geom = {"type": "Point", "coordinates": [lon, lat]}
            out.append(_feature(f"s{seed}_{i}", geom, float(rng.uniform(20, 300))))
        else:
            ring = _star(lat, lon, float(rng.uniform(20, 400)), 7, rng.uniform(0, 1, 5).tolist())
            out.append(_feature(f"s{seed}_{i}", {"type": "Polygon", "coordinates": [ring]}))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_many_edits_in_a_city_keep_the_raster_exact(seed: int) -> None:
    """Dense overlapping stores, 40 edits (one far away, so the raster grows); then every
    point the raster settles gets the segment its H3 cell has, and matching equals a fresh
    build and brute force."""
    from geofences.h3cells import latlng_to_cells
    from geofences.prefilter import EMPTY, NEEDS_H3

    base, pool = _city(120, seed), _city(60, seed + 100)
    far = _city(3, seed + 200, 45.76, 4.84)  # Lyon
    live = {f.id: f for f in base}
    index = FenceIndex.build(base)
    rng = np.random.default_rng(seed)
    for k in range(40):
        op = k % 3
        if k == 20:
            fence = far[0]
            index, live[fence.id] = with_fence(index, fence), fence
        elif op == 0:
            fence = pool[k]
            index, live[fence.id] = with_fence(index, fence), fence
        elif op == 1:
            fid = sorted(live)[int(rng.integers(len(live)))]
            fence = _renamed(pool[(k * 7) % len(pool)], fid)
            index, live[fid] = with_fence(index, fence), fence
        else:
            fid = sorted(live)[int(rng.integers(len(live)))]
            index = without_fence(index, fid)
            del live[fid]
    lat = np.concatenate(
        [48.85 + rng.uniform(-0.02, 0.02, 60_000), 45.76 + rng.uniform(-0.01, 0.01, 5_000)]
    )
    lon = np.concatenate(
        [2.35 + rng.uniform(-0.025, 0.025, 60_000), 4.84 + rng.uniform(-0.01, 0.01, 5_000)]
    )
    code = index._raster.codes(lat, lon)
    settled = code != NEEDS_H3
    via_h3 = index._segment_of(latlng_to_cells(lat, lon, index.resolution))
    hit = settled & (code != EMPTY)
    # A settled code names a segment holding the fences of the point's H3 cell's segment.
    ptr, fence = index._seg_ptr, index._seg_fence
    for c, h in zip(code[hit][::50].tolist(), via_h3[hit][::50].tolist(), strict=True):
        want = [] if h == EMPTY else sorted(fence[ptr[h] : ptr[h + 1]])  # deletions empty some
        assert sorted(fence[ptr[c] : ptr[c + 1]]) == want
    assert (via_h3[code == EMPTY] == EMPTY).all()
    _check(index, live, lat[::7], lon[::7])
    scratch = FenceIndex.build(list(live.values()))
    assert _pairs(index, lat, lon) == _pairs(scratch, lat, lon)
