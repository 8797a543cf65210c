"""End-to-end benchmark: pings through `POST /v1/pings` on a real server and real PostgreSQL.

One run: a uvicorn server in a subprocess on 127.0.0.1 (embedded PostgreSQL, or DATABASE_URL),
realistic Paris stores, and a fleet of customers walking around. Measures
  - throughput with 500-ping batches (several concurrent uploaders), median of runs;
  - latency p50/p99 of single-ping requests sent at a fixed rate.
Writes bench/e2e.json and bench/e2e.md.

    python scripts/bench_e2e.py [--batches 200] [--runs 3] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from machine_info import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import LAT0, LON0, offset, square_feature  # noqa: E402
from tests.server import free_port  # noqa: E402
from tests.server import start_server as serve  # noqa: E402

ADMIN = "bench-admin-key-000000000000"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def start_server(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """The engine as deployed: `geo-engine serve` in its own process (tests/server.py)."""
    return serve(
        None,
        port,
        data_dir,
        admin_key=ADMIN,
        timeout_s=60.0,
        GEO_ENGINE_RAW_FIX_RETENTION_S=os.environ.get("GEO_ENGINE_RAW_FIX_RETENTION_S", "86400"),
        GEO_ENGINE_RATE_LIMIT_PER_S="0",  # measure the engine, not the throttle
    )


def make_fences(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    feats = []
    for i in range(n):
        lat, lon = offset(LAT0, LON0, rng.uniform(-4000, 4000), rng.uniform(-6000, 6000))
        feats.append(square_feature(f"store-{i}", lat, lon, rng.uniform(15, 60), store_id=f"s{i}"))
    return feats


def make_batches(
    rng: np.random.Generator, n_batches: int, size: int, customers: int, t0: float
) -> list[bytes]:
    """Customers random-walk across the city; 1 fix per customer per ~30 s of simulated time."""
    lat = LAT0 + rng.uniform(-0.04, 0.04, customers)
    lon = LON0 + rng.uniform(-0.08, 0.08, customers)
    t = np.full(customers, t0)
    out = []
    for _ in range(n_batches):
        who = rng.integers(0, customers, size)
        t[who] += rng.uniform(20, 40, size)
        lat[who] += rng.normal(0, 0.0002, size)
        lon[who] += rng.normal(0, 0.0003, size)
        rows = [
            {
                "customer_id": f"c{w}",
                "lat": float(lat[w]),
                "lon": float(lon[w]),
                "ts": float(t[w]),
                "accuracy_m": 10.0,
            }
            for w in who
        ]
        out.append(json.dumps({"pings": rows}).encode())
    return out


async def throughput(base: str, batches: list[bytes], concurrency: int) -> float:
    queue = list(reversed(batches))
    total = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal total
        while queue:
            body = queue.pop()
            r = await client.post(
                "/v1/pings?wait=true",
                content=body,
                headers={**AUTH, "content-type": "application/json"},
            )
            r.raise_for_status()
            total += r.json()["accepted"]

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return total / elapsed


async def latency(base: str, rate: float, count: int, t0: float) -> list[float]:
    lat_ms: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        interval = 1.0 / rate
        tasks = []

        async def one(i: int) -> None:
            body = {
                "pings": [
                    {
                        "customer_id": f"single-{i % 500}",
                        "lat": LAT0,
                        "lon": LON0 + (i % 7) * 1e-4,
                        "ts": t0 + i,
                        "accuracy_m": 8.0,
                    }
                ]
            }
            started = time.perf_counter()
            r = await client.post("/v1/pings?wait=true", json=body, headers=AUTH)
            r.raise_for_status()
            lat_ms.append((time.perf_counter() - started) * 1000)

        next_at = time.perf_counter()
        for i in range(count):
            tasks.append(asyncio.create_task(one(i)))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
    return lat_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=200, help="500-ping batches per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fences", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=200.0, help="single pings per second")
    ap.add_argument("--singles", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="geo-bench-") as tmp:
        proc = start_server(port, Path(tmp))
        try:
            r = httpx.post(
                f"{base}/v1/geofences/import",
                headers=AUTH,
                timeout=120,
                json={"type": "FeatureCollection", "features": make_fences(rng, args.fences)},
            )
            r.raise_for_status()
            t0 = time.time() - 6 * 86400
            warm = make_batches(rng, 20, 500, args.customers, t0 - 3600)
            asyncio.run(throughput(base, warm, args.concurrency))
            rates = []
            for run in range(args.runs):
                batches = make_batches(rng, args.batches, 500, args.customers, t0 + run * 86400 / 4)
                rates.append(asyncio.run(throughput(base, batches, args.concurrency)))
                print(f"run {run + 1}: {rates[-1]:,.0f} pings/s")
            lat = asyncio.run(latency(base, args.rate, args.singles, time.time() - 3 * 86400))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    p50, p99 = np.percentile(lat, [50, 99])
    result = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded pgserver",
        },
        "fences": args.fences,
        "customers": args.customers,
        "batch_size": 500,
        "batches_per_run": args.batches,
        "concurrency": args.concurrency,
        "pings_per_s_runs": rates,
        "pings_per_s_median": statistics.median(rates),
        "single_ping_rate_per_s": args.rate,
        "single_ping_latency_ms": {"p50": p50, "p99": p99, "count": len(lat)},
    }
    args.out.mkdir(exist_ok=True)
    (args.out / "e2e.json").write_text(json.dumps(result, indent=2))
    md = (
        "End to end through `POST /v1/pings` (uvicorn, 1 process, "
        f"{result['machine']['database']}, "
        f"{args.fences} fences, raw fixes stored; {cpu_name()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})\n\n"
        "| measure | value |\n|---|---|\n"
        f"| pings/s, 500-ping batches, {args.concurrency} uploaders (median of {args.runs}) "
        f"| {statistics.median(rates):,.0f} |\n"
        f"| single-ping request latency at {args.rate:.0f}/s, p50 | {p50:.2f} ms |\n"
        f"| single-ping request latency at {args.rate:.0f}/s, p99 | {p99:.2f} ms |\n"
    )
    (args.out / "e2e.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
