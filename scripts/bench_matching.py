"""Benchmark FenceIndex.match against its yardsticks on Paris-like data.

    python scripts/bench_matching.py            # 1 M points, 10 / 1k / 10k / 100k fences
    python scripts/bench_matching.py --quick    # 200 k points, up to 10 k fences

Writes bench/matching.json and bench/matching.md. PostGIS is not measured: no server here has
the extension (`select postgis_version()` fails on 127.0.0.1), so that column is left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geofences.h3cells import latlng_to_cells
from geofences.index import FenceIndex
from geofences.model import FenceKind, Geofence

BOX = (48.80, 48.91, 2.25, 2.42)  # lat0, lat1, lon0, lon1
M_PER_DEG = 111_195.0


def make_fences(n: int, rng: np.random.Generator) -> list[Geofence]:
    """Stores: polygons 20-150 m across and circles of 30-200 m radius, scattered in the box;
    1 in 20 polygon stores gets a zone (department) inside it."""
    fences: list[Geofence] = []
    while len(fences) < n:
        i = len(fences)
        lat = float(rng.uniform(BOX[0], BOX[1]))
        lon = float(rng.uniform(BOX[2], BOX[3]))
        if i % 2:
            r = float(rng.uniform(30, 200))
            fences.append(
                Geofence(
                    f"c{i}",
                    "store",
                    FenceKind.STORE,
                    f"s{i}",
                    {"type": "Point", "coordinates": [lon, lat]},
                    None,
                    r,
                )
            )
            continue
        size = float(rng.uniform(20, 150))
        ring = _star(lat, lon, size, int(rng.integers(4, 10)), rng)
        fences.append(_poly(f"p{i}", FenceKind.STORE, ring))
        if i % 40 == 0 and len(fences) < n:
            fences.append(_poly(f"z{i}", FenceKind.ZONE, _star(lat, lon, size / 4, 4, rng)))
    return fences[:n]


def _star(lat: float, lon: float, size: float, n: int, rng: np.random.Generator) -> np.ndarray:
    a = (np.arange(n) + rng.uniform(0, 0.5, n)) * 2 * math.pi / n
    r = rng.uniform(0.6, 1.0, n) * size / 2
    x = lon + r * np.cos(a) / (M_PER_DEG * math.cos(math.radians(lat)))
    y = lat + r * np.sin(a) / M_PER_DEG
    return np.column_stack([x, y])


def _poly(fid: str, kind: FenceKind, ring: np.ndarray) -> Geofence:
    shape = shapely.Polygon(ring)
    shapely.prepare(shape)
    coords = [[*map(float, p)] for p in ring] + [[float(ring[0, 0]), float(ring[0, 1])]]
    return Geofence(fid, fid, kind, "s", {"type": "Polygon", "coordinates": [coords]}, shape)


def timed(
    fns: dict[str, Callable[[], Any]], runs: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Warm each up, then time them in turns, so load from other processes hits all alike."""
    out = {k: fn() for k, fn in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - t)
    return times, out


def strtree_shapes(fences: list[Geofence]) -> np.ndarray:
    """Circles as 64-gons in lon/lat (what a plain STRtree user would do)."""
    out = []
    for f in fences:
        if f.shape is not None:
            out.append(f.shape)
            continue
        lon, lat = f.geometry["coordinates"]
        r = float(f.radius_m or 0.0)
        a = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        x = lon + r * np.cos(a) / (M_PER_DEG * math.cos(math.radians(lat)))
        out.append(shapely.Polygon(np.column_stack([x, lat + r * np.sin(a) / M_PER_DEG])))
    return np.array(out, dtype=object)


def run(n_fences: int, lat: np.ndarray, lon: np.ndarray, res: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(n_fences)
    fences = make_fences(n_fences, rng)
    t = time.perf_counter()
    index = FenceIndex.build(fences, res)
    build_s = time.perf_counter() - t
    n = lat.size
    tree = shapely.STRtree(strtree_shapes(fences))
    times, out = timed(
        {
            "match": lambda: index.match(lat, lon),
            "h3": lambda: latlng_to_cells(lat, lon, res),
            "strtree": lambda: tree.query(shapely.points(lon, lat), predicate="intersects"),
        },
        runs,
    )
    match_s, h3_s, tree_s = (statistics.median(times[k]) for k in ("match", "h3", "strtree"))
    m, pairs = out["match"], out["strtree"]
    # Per-run ratio, then the median: robust to load drifting between runs.
    vs_h3 = statistics.median(a / b for a, b in zip(times["match"], times["h3"], strict=True))
    cand = index.candidates(lat, lon)
    row = {
        "fences": n_fences,
        "build_s": round(build_s, 3),
        "cover_rows": index.cover_size,
        "match_s": round(match_s, 4),
        "match_pings_per_s": round(n / match_s),
        "h3_s": round(h3_s, 4),
        "h3_pings_per_s": round(n / h3_s),
        "strtree_s": round(tree_s, 4),
        "strtree_pings_per_s": round(n / tree_s),
        "matches_per_ping": round(len(m) / n, 3),
        "candidates_per_ping": round(cand[0].size / n, 3),
        "exact_tests_per_ping": round(float((~cand[2]).sum()) / n, 3),
        "ns_per_match": round(match_s / max(len(m), 1) * 1e9, 1),
        "strtree_pairs_per_ping": round(pairs.shape[1] / n, 3),
        "index_vs_h3": round(vs_h3, 3),
        "index_speedup_vs_strtree": round(tree_s / match_s, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import h3ronpy

        h3o = str(h3ronpy.__version__)
    except ImportError:
        h3o = "not installed (h3-py scalar fallback)"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "h3": h3.__version__,
        "h3ronpy": h3o,
    }


def write(results: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by = {r["fences"]: r for r in results}
    ratios: dict[str, Any] = {}
    if 10 in by and max(by) > 10:
        ratios[f"cost_{max(by)}_over_cost_10"] = round(
            by[max(by)]["match_s"] / by[10]["match_s"], 2
        )
    if 10_000 in by:
        ratios["index_vs_h3_at_10k"] = by[10_000]["index_vs_h3"]
    (out / "matching.json").write_text(
        json.dumps({**meta, "ratios": ratios, "results": results}, indent=2) + "\n"
    )
    cols = [
        ("fences", "fences"),
        ("build_s", "build s"),
        ("cover_rows", "cover rows"),
        ("match_pings_per_s", "match pings/s"),
        ("h3_pings_per_s", "H3 alone pings/s"),
        ("strtree_pings_per_s", "STRtree pings/s"),
        ("index_vs_h3", "match / H3 time"),
        ("index_speedup_vs_strtree", "speed-up vs STRtree"),
        ("matches_per_ping", "matches/ping"),
        ("exact_tests_per_ping", "exact tests/ping"),
        ("ns_per_match", "ns/match"),
    ]
    lines = [
        "# Matching benchmark",
        "",
        f"{meta['points']:,} random points in lat {BOX[0]}..{BOX[1]}, lon {BOX[2]}..{BOX[3]}; "
        f"H3 resolution {meta['resolution']}; median of {meta['runs']} runs after a warm-up.",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores; Python {meta['python']}, numpy "
        f"{meta['numpy']}, shapely {meta['shapely']}, h3 {meta['h3']}, h3ronpy {meta['h3ronpy']}.",
        "",
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "---:|" * len(cols),
    ]
    for r in results:
        lines.append("| " + " | ".join(f"{r[c[0]]:,}" for c in cols) + " |")
    lines += [
        "",
        "Ratios: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()),
        "",
        "PostGIS: not measured (no PostGIS extension on this machine's PostgreSQL).",
        "",
    ]
    (out / "matching.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="200 k points, up to 10 k fences")
    ap.add_argument("--fences", default=None, help="comma-separated fence counts")
    ap.add_argument("--resolution", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench"))
    a = ap.parse_args()
    points = a.points or (200_000 if a.quick else 1_000_000)
    counts = [
        int(x)
        for x in (a.fences or ("10,1000,10000" if a.quick else "10,1000,10000,100000")).split(",")
    ]
    rng = np.random.default_rng(0)
    lat = rng.uniform(BOX[0], BOX[1], points)
    lon = rng.uniform(BOX[2], BOX[3], points)
    meta = {**machine(), "points": points, "resolution": a.resolution, "runs": a.runs}
    results = [run(n, lat, lon, a.resolution, a.runs) for n in counts]
    write(results, meta, a.out)


if __name__ == "__main__":
    main()
