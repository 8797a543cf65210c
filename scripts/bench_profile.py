"""Profile and velocity benchmark. Measures
  - behavioural events/s through `POST /v1/events`, 500-event batches, in process (httpx ASGI
    transport: no sockets) on real PostgreSQL (DATABASE_URL, else an embedded pgserver);
  - profile read latency p50/p99 in process (ProfileService.profile: memory only);
  - velocity recomputation for 1 M customers (ProfileState.sweep: windows, % change, trends,
    crossings, vectorized);
  - bytes per customer: profile arrays / customers + the slot dict and id list, and the presence
    engine's per-customer state (a cursor) measured with tracemalloc.
Writes bench/profile.json and bench/profile.md.

    python scripts/bench_profile.py [--batches 40] [--customers 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
from machine_info import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.db.connect import embedded_url  # noqa: E402
from geo_engine.models import CustomerCursor  # noqa: E402
from geo_engine.presence import PresenceEngine  # noqa: E402
from geo_engine.profile.config import DAY_S, ProfileConfig  # noqa: E402
from geo_engine.profile.events import N_KPIS  # noqa: E402
from geo_engine.profile.state import ProfileState  # noqa: E402

ADMIN = "bench-admin-key-000000000000"
TYPES = ["page_view", "search", "product_view", "click", "cart_add", "purchase", "email_open"]
CATS = ["shoes", "bags", "garden", "tea", "kids", "sport", "beauty", "books"]


def make_batch(rng: np.random.Generator, n: int, customers: int, now: float, b: int) -> bytes:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        t = TYPES[int(rng.integers(len(TYPES)))]
        cat = CATS[int(rng.integers(len(CATS)))]
        row: dict[str, Any] = {
            "customer_id": f"c{int(rng.integers(customers))}",
            "type": t,
            "ts": now - float(rng.uniform(0, 14 * DAY_S)),
            "channel": ["web", "app", "email", "store"][int(rng.integers(4))],
            "event_id": f"b{b}-{i}",
        }
        if t == "page_view":
            row["properties"] = {"url": f"https://shop.example/{cat}/{i}", "category": cat}
        elif t == "search":
            row["properties"] = {"query": cat, "product_ids": ["p1", "p2"]}
        elif t in ("product_view", "cart_add"):
            row["properties"] = {"product_id": f"p{i}", "category": cat}
        elif t == "purchase":
            amount = round(float(rng.uniform(5, 200)), 2)
            row["properties"] = {
                "order_id": f"o{b}-{i}",
                "amount": amount,
                "currency": "EUR",
                "items": [{"category": cat, "quantity": 1, "price": amount}],
            }
        rows.append(row)
    return json.dumps({"events": rows}).encode()


async def api_throughput(url: str, batches: int, customers: int) -> dict[str, Any]:
    import httpx

    from adapters.api.app import create_app
    from adapters.composition import build_services
    from adapters.settings import Settings

    settings = Settings(database_url=url, admin_key=ADMIN, db_pool_max=8)  # type: ignore[call-arg]
    svc = await build_services(settings, background=False)
    rng = np.random.default_rng(5)
    now = time.time()
    bodies = [make_batch(rng, 500, customers, now, b) for b in range(batches + 5)]
    app = create_app(services=svc)
    headers = {"Authorization": f"Bearer {ADMIN}", "content-type": "application/json"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            for body in bodies[:5]:  # warm up
                (
                    await client.post("/v1/events?wait=true", content=body, headers=headers)
                ).raise_for_status()
            lat = []
            accepted = 0
            started = time.perf_counter()
            for body in bodies[5:]:
                t0 = time.perf_counter()
                r = await client.post("/v1/events?wait=true", content=body, headers=headers)
                r.raise_for_status()
                lat.append(time.perf_counter() - t0)
                accepted += r.json()["accepted"]
            elapsed = time.perf_counter() - started
        # profile reads from memory, on the customers just fed
        ids = list(svc.profiles.state.slots)[:2000]
        reads = []
        for _ in range(5):
            for cid in ids:
                t0 = time.perf_counter_ns()
                svc.profiles.profile(cid, now)
                reads.append(time.perf_counter_ns() - t0)
    finally:
        await svc.close()
    return {
        "events_per_s": accepted / elapsed,
        "batches": batches,
        "batch_size": 500,
        "accepted": accepted,
        "batch_ms_p50": float(np.percentile(lat, 50) * 1000),
        "batch_ms_p99": float(np.percentile(lat, 99) * 1000),
        "profile_read_us_p50": float(np.percentile(reads, 50) / 1000),
        "profile_read_us_p99": float(np.percentile(reads, 99) / 1000),
        "profile_reads": len(reads),
        "customers_in_memory": len(ids),
    }


def velocity_1m(n: int) -> dict[str, Any]:
    cfg = ProfileConfig()
    now = 20_600 * DAY_S + 0.37 * DAY_S
    state = ProfileState(cfg, ref=now, capacity=n)
    for i in range(n):
        state.slot(f"c{i}")
    state.advance(now)
    rng = np.random.default_rng(1)
    # ~20 % of customer-days active, a few events each
    counts = state.ring.counts
    mask = rng.random(counts.shape[:2]) < 0.2
    counts[mask] = rng.integers(0, 4, (int(mask.sum()), N_KPIS), dtype=np.uint16)
    # run 1: random counts against all-stable trends, a crossing storm (every changed trend
    # becomes a Crossing); runs 2-4: the steady state a periodic sweep sees (hours apart)
    times, crossings = [], []
    for k in range(4):
        t0 = time.perf_counter()
        update = state.sweep(now + k * 3600)
        times.append(time.perf_counter() - t0)
        crossings.append(len(update.crossings))
        state.apply_trends(update)
    # the vectorized core alone (windows + % change + trends), no crossing objects
    from geo_engine.profile.velocity import velocity

    t0 = time.perf_counter()
    latest, previous = state.ring.windows(cfg.window_days, now + 5 * 3600)
    velocity(latest, previous, cfg)
    core = time.perf_counter() - t0
    nbytes = state.nbytes()["arrays"]
    gc.collect()
    return {
        "customers": n,
        "sweep_s_runs": times,
        "crossings_runs": crossings,
        "sweep_s_first": times[0],
        "sweep_s_steady_median": statistics.median(times[1:]),
        "windows_and_velocity_s": core,
        "array_bytes": nbytes,
    }


def bytes_per_customer(n: int) -> dict[str, Any]:
    cfg = ProfileConfig()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    state = ProfileState(cfg, capacity=n)
    for i in range(n):
        state.slot(f"customer-{i:08d}")
    snap = tracemalloc.take_snapshot()
    profile_total = sum(s.size_diff for s in snap.compare_to(base, "filename"))
    tracemalloc.stop()
    arrays = state.nbytes()["arrays"]
    del state
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    engine = PresenceEngine()
    engine.load(
        ((f"customer-{i:08d}", CustomerCursor(1.7e9 + i, 48.86, 2.36, 10.0)) for i in range(n)),
        [],
    )
    snap = tracemalloc.take_snapshot()
    presence_total = sum(s.size_diff for s in snap.compare_to(base, "filename"))
    tracemalloc.stop()
    per_array = arrays / n
    return {
        "customers": n,
        "window_days": cfg.window_days,
        "ring_days": cfg.ring_days,
        "kpis": N_KPIS,
        "profile_array_bytes_per_customer": per_array,
        "profile_total_bytes_per_customer": profile_total / n,  # arrays + dict + ids + keys
        "presence_bytes_per_customer": presence_total / n,  # a cursor per active customer
        "total_bytes_per_customer": (profile_total + presence_total) / n,
    }


async def _fresh_db(server: str) -> tuple[str, str]:
    name = f"bench_profile_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    # replace the path only: the embedded server's URL carries its socket in the query
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment)), name


async def _drop_db(server: str, name: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=40, help="500-event batches timed")
    ap.add_argument("--api-customers", type=int, default=20_000)
    ap.add_argument("--customers", type=int, default=1_000_000, help="for the velocity sweep")
    ap.add_argument("--bytes-customers", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="geo-bench-profile-") as tmp:
        server = os.environ.get("DATABASE_URL") or embedded_url(Path(tmp))
        url, name = asyncio.run(_fresh_db(server))
        try:
            api = asyncio.run(api_throughput(url, args.batches, args.api_customers))
        finally:
            asyncio.run(_drop_db(server, name))
    print(f"API: {api['events_per_s']:,.0f} events/s")
    vel = velocity_1m(args.customers)
    print(f"sweep of {args.customers:,} customers: {vel['sweep_s_steady_median']:.3f} s")
    mem = bytes_per_customer(args.bytes_customers)
    print(f"bytes/customer: {mem['total_bytes_per_customer']:.0f}")
    result = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded pgserver",
        },
        "api": api,
        "velocity": vel,
        "memory": mem,
    }
    args.out.mkdir(exist_ok=True)
    (args.out / "profile.json").write_text(json.dumps(result, indent=2))
    md = (
        f"Profiles and velocity ({cpu_name()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, {result['machine']['database']})\n\n"
        "| measure | value |\n|---|---|\n"
        f"| events/s through `POST /v1/events`, 500-event batches, in-process ASGI, 1 client "
        f"| {api['events_per_s']:,.0f} |\n"
        f"| one 500-event batch, p50 / p99 | {api['batch_ms_p50']:.1f} / "
        f"{api['batch_ms_p99']:.1f} ms |\n"
        f"| profile read in process (memory), p50 / p99 | {api['profile_read_us_p50']:.1f} / "
        f"{api['profile_read_us_p99']:.1f} µs |\n"
        f"| velocity sweep of {vel['customers']:,} customers (windows, % change, trends, "
        f"crossings), steady state, median of 3 ({', '.join(map(str, vel['crossings_runs'][1:]))}"
        f" crossings) | {vel['sweep_s_steady_median']:.3f} s |\n"
        f"| the same, first sweep over random counts ({vel['crossings_runs'][0]:,} crossings) "
        f"| {vel['sweep_s_first']:.2f} s |\n"
        f"| of which windows + % change + trends (vectorized core) "
        f"| {vel['windows_and_velocity_s']:.3f} s |\n"
        f"| profile arrays per customer ({mem['kpis']} KPIs x {mem['ring_days']} days, 1 B a cell "
        f"+ RFM, channels, trends) | {mem['profile_array_bytes_per_customer']:.0f} B |\n"
        f"| profile state per customer incl. slot dict, id list, id strings "
        f"| {mem['profile_total_bytes_per_customer']:.0f} B |\n"
        f"| presence state per active customer (cursor in the engine) "
        f"| {mem['presence_bytes_per_customer']:.0f} B |\n"
        f"| presence + velocity state per active customer "
        f"| {mem['total_bytes_per_customer']:.0f} B |\n"
    )
    (args.out / "profile.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
