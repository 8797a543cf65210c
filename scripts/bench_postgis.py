"""The engine's fence index against PostGIS's GiST join, on the same fences and points.

One run: for each fence count, the fences of scripts/bench_matching.py (same seeds) go into a
PostGIS table with a GiST index, the points into another, and
`SELECT count(*) FROM points p JOIN fences f ON ST_Intersects(f.geom, p.geom)` is timed (median
of runs after a warm-up) next to `FenceIndex.match` on the same points in this process.
Circles are 64-gons in PostGIS, as a PostGIS user would store them. Needs a server with PostGIS:

    BENCH_POSTGIS_URL=postgresql://postgres@127.0.0.1:5432/bench_postgis \\
        python scripts/bench_postgis.py [--points 200000] [--runs 3]

Writes bench/postgis.json and bench/postgis.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_matching import BOX, machine, make_fences, strtree_shapes  # noqa: E402

from geofences.index import FenceIndex  # noqa: E402


async def measure(
    url: str, n_fences: int, lat: np.ndarray, lon: np.ndarray, runs: int
) -> dict[str, object]:
    fences = make_fences(n_fences, np.random.default_rng(n_fences))
    index = FenceIndex.build(fences, 11)
    index.match(lat, lon)  # warm-up
    engine_s = []
    for _ in range(runs):
        t = time.perf_counter()
        m = index.match(lat, lon)
        engine_s.append(time.perf_counter() - t)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_fences, bench_points")
        await conn.execute("CREATE TABLE bench_fences (id int, geom geometry(Polygon, 4326))")
        await conn.execute("CREATE TABLE bench_points (id int, geom geometry(Point, 4326))")
        wkb = shapely.to_wkb(strtree_shapes(fences), hex=True)
        await conn.executemany(
            "INSERT INTO bench_fences"
            " VALUES ($1, ST_SetSRID(ST_GeomFromWKB(decode($2, 'hex')), 4326))",
            list(enumerate(wkb)),
        )
        await conn.execute(
            "INSERT INTO bench_points SELECT g, ST_SetSRID(ST_MakePoint(x, y), 4326)"
            " FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS u(x, y, g)",
            lon.tolist(),
            lat.tolist(),
        )
        await conn.execute("CREATE INDEX ON bench_fences USING gist (geom)")
        await conn.execute("ANALYZE bench_fences; ANALYZE bench_points")
        q = (
            "SELECT count(*) FROM bench_points p"
            " JOIN bench_fences f ON ST_Intersects(f.geom, p.geom)"
        )
        await conn.fetchval(q)  # warm-up
        pg_s = []
        pairs = 0
        for _ in range(runs):
            t = time.perf_counter()
            pairs = await conn.fetchval(q)
            pg_s.append(time.perf_counter() - t)
        await conn.execute("DROP TABLE bench_fences, bench_points")
    finally:
        await conn.close()
    n = lat.size
    e, p = statistics.median(engine_s), statistics.median(pg_s)
    row = {
        "fences": n_fences,
        "points": n,
        "engine_pings_per_s": round(n / e),
        "postgis_pings_per_s": round(n / p),
        "engine_vs_postgis": round(p / e, 1),
        "engine_pairs": len(m),
        "postgis_pairs": int(pairs),
    }
    print(json.dumps(row), flush=True)
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fences", type=int, nargs="*", default=[10, 1_000, 10_000, 100_000])
    args = ap.parse_args()
    url = os.environ.get("BENCH_POSTGIS_URL")
    if not url:
        raise SystemExit("set BENCH_POSTGIS_URL to a PostgreSQL database with PostGIS")
    rng = np.random.default_rng(0)
    lat = rng.uniform(BOX[0], BOX[1], args.points)
    lon = rng.uniform(BOX[2], BOX[3], args.points)
    rows = [await measure(url, n, lat, lon, args.runs) for n in args.fences]
    conn = await asyncpg.connect(url)
    version = await conn.fetchval("SELECT postgis_lib_version()")
    pg = await conn.fetchval("SHOW server_version")
    await conn.close()
    out = ROOT / "bench"
    out.mkdir(exist_ok=True)
    (out / "postgis.json").write_text(
        json.dumps(
            {"machine": machine(), "postgres": pg, "postgis": version, "rows": rows}, indent=2
        )
    )
    md = [
        "# Fence index vs PostGIS GiST join",
        "",
        f"{args.points:,} random points in Paris; same fences as bench_matching; median of "
        f"{args.runs} runs after a warm-up. PostgreSQL {pg}, PostGIS "
        f"{version} on the same 2 cores.",
        "",
        "| fences | engine pings/s | PostGIS pings/s | engine / PostGIS"
        " | pairs (engine / PostGIS, circles as 64-gons) |",
        "|---:|---:|---:|---:|---:|",
    ]
    md += [
        f"| {r['fences']:,} | {r['engine_pings_per_s']:,} | {r['postgis_pings_per_s']:,}"
        f" | {r['engine_vs_postgis']}× | {r['engine_pairs']:,} / {r['postgis_pairs']:,} |"
        for r in rows
    ]
    (out / "postgis.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    asyncio.run(main())
