"""End to end through `POST /v1/pings`, against the floor this machine's HTTP stack allows.

One run, the same cores, the same request bodies (500-fix batches of 20 k customers walking
around Paris, 300 store fences), the same client (scripts/loadgen.py: several processes of
keep-alive connections):
  - floor: scripts/floor_app.py, an ASGI app that only decodes the bodies with msgspec, under
    uvicorn (2 processes, uvloop, httptools);
  - engine: `geo-engine serve` as a user starts it (embedded PostgreSQL and NATS unless
    DATABASE_URL / GEO_ENGINE_NATS_URL are set), with an ingest key; then
      accepted fixes/s: 202 once durable in the log (median of runs), and its ratio to the floor;
      applied fixes/s: from the first request until every partition owner caught up;
      single fixes at --rate requests/s, open loop: p50 / p99 from the scheduled send time.
  --profile records py-spy of the engine processes during one accepted run (bench/e2e-*.txt;
  with --split, of the owner process alone, whose CPU per fix is also reported apart, as the
  API's is; --profile-api records the API processes).

    python scripts/bench_e2e.py [--seconds 10] [--runs 3] [--workers 1] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from loadgen import closed_loop, open_loop, request
from machine_info import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import LAT0, LON0, offset, square_feature  # noqa: E402
from tests.server import free_port  # noqa: E402
from tests.server import start_server as serve  # noqa: E402

ADMIN = "bench-admin-key-000000000000"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
JSON = {"Content-Type": "application/json"}


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
            {"customer_id": f"c{w}", "lat": float(lat[w]), "lon": float(lon[w]),
             "ts": float(t[w]), "accuracy_m": 10.0}
            for w in who
        ]  # fmt: skip
        out.append(json.dumps({"pings": rows}).encode())
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds of the engine's Python processes (uvicorn's workers are children; an
    embedded nats-server child is not counted)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        if Path(f"/proc/{pid}/comm").read_text().startswith("python"):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_s(int(k)) for k in kids)


def start_floor(port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "scripts.floor_app:app", "--workers", "2"]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--port", str(port), "--log-level", "error"]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    for _ in range(200):
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b'{"pings": []}', timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the floor app did not start")


def loaded(port: int, reqs: list[bytes], a: argparse.Namespace) -> dict[str, Any]:
    closed_loop(port, reqs, procs=a.procs, conns=a.conns, seconds=2)  # warm-up
    runs = []
    for _ in range(a.runs):
        rps, fps, errors = closed_loop(port, reqs, procs=a.procs, conns=a.conns, seconds=a.seconds)
        runs.append({"requests_per_s": rps, "fixes_per_s": fps, "errors": errors})
        print(f"  {fps:,.0f} fixes/s ({rps:,.0f} req/s) {errors or ''}")
    return {"runs": runs, "fixes_per_s": statistics.median(r["fixes_per_s"] for r in runs)}


def caught_up(base: str) -> bool:
    leases = httpx.get(f"{base}/v1/cluster", headers=AUTH, timeout=30).json()["leases"]
    return all(x["caught_up"] for x in leases)


@contextlib.contextmanager
def running(
    a: argparse.Namespace, rng: np.random.Generator, workers: int, split: bool
) -> Iterator[tuple[int, str, dict[str, str], list[int]]]:
    """`serve --workers N` (and with `split` one `serve --role worker`) with the fences and an
    ingest key: (port, base URL, the key's headers, the engine's pids)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"GEO_ENGINE_RATE_LIMIT_PER_S": "0", "GEO_ENGINE_RAW_FIX_RETENTION_S": "86400"}
    with tempfile.TemporaryDirectory(prefix="geo-bench-") as tmp:
        role = "api" if split else "all"
        proc = serve(None, port, Path(tmp), admin_key=ADMIN, timeout_s=120, role=role, **env,
                     extra_args=["--workers", str(workers)])  # fmt: skip
        owner = None
        try:
            fences = {"type": "FeatureCollection", "features": make_fences(rng, a.fences)}
            httpx.post(f"{base}/v1/geofences/import", headers=AUTH, timeout=300, json=fences)
            app = {"name": "bench app", "role": "ingest"}
            key = httpx.post(f"{base}/v1/api-keys", headers=AUTH, timeout=30, json=app).json()[
                "key"
            ]
            headers = {**JSON, "Authorization": f"Bearer {key}"}
            if split:  # the partition owner in its own process, after the API's migrations
                owner = serve(None, free_port(), Path(tmp), admin_key=ADMIN, timeout_s=120,
                              role="worker", **env)  # fmt: skip
            yield port, base, headers, [proc.pid] + ([] if owner is None else [owner.pid])
        finally:
            for p in (owner, proc):
                if p is not None:
                    p.terminate()
                    p.wait(timeout=60)


def engine(reqs_of: Any, a: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    with running(a, rng, a.workers, a.split) as (port, base, headers, pids):
        out = accepted_and_applied(port, base, pids, reqs_of(headers), a)
        same = a.single_workers == a.workers and not a.split
        if same:
            out["single"] = singles(port, headers, a)
    if not same:  # the single fixes on their own engine, as `serve --workers K` starts
        with running(a, rng, a.single_workers, False) as (port, _, headers, _):
            out["single"] = singles(port, headers, a)
    return out


def singles(port: int, headers: dict[str, str], a: argparse.Namespace) -> dict[str, Any]:
    time.sleep(a.settle)  # leases settled between the workers, first connections made
    reqs = [request("/v1/pings", b, headers) for b in single_bodies(a.singles)]
    asyncio.run(open_loop(port, reqs[:300], 100))  # warm-up
    t = asyncio.run(open_loop(port, reqs, a.rate))
    lat = np.percentile(t.latencies_ms, [50, 99])
    print(f"  single fixes at {a.rate:g}/s (serve --workers {a.single_workers}): "
          f"p50 {lat[0]:.2f} ms, p99 {lat[1]:.2f} ms")  # fmt: skip
    return {"rate": a.rate, "count": t.requests, "errors": t.errors, "workers": a.single_workers,
            "p50_ms": float(lat[0]), "p99_ms": float(lat[1])}  # fmt: skip


def accepted_and_applied(
    port: int, base: str, pids: list[int], reqs: list[bytes], a: argparse.Namespace
) -> dict[str, Any]:
    spies = [spy(a, name, pid) for name, pid in ((a.profile, pids[-1]), (a.profile_api, pids[0]))
             if name]  # fmt: skip
    o0, c0, t0 = cpu_s(pids[-1]), sum(map(cpu_s, pids)), time.perf_counter()
    out = loaded(port, reqs, a)
    c1, t1 = sum(map(cpu_s, pids)), time.perf_counter()
    while not caught_up(base):
        time.sleep(0.2)
    o2, c2, t2 = cpu_s(pids[-1]), sum(map(cpu_s, pids)), time.perf_counter()
    for s in spies:
        s.wait()
    total = sum(r["fixes_per_s"] for r in out["runs"]) * a.seconds  # approximately, per run
    out["engine_cores_while_loaded"] = (c1 - c0) / (t1 - t0)
    out["drain_s_after_load"] = t2 - t1
    out["applied_fixes_per_s"] = total / (t2 - t0)
    out["engine_cpu_us_per_fix"] = (c2 - c0) / total * 1e6
    if len(pids) > 1:  # --split: the partition owner's own share, and the API's
        out["owner_cpu_us_per_fix"] = (o2 - o0) / total * 1e6
        out["api_cpu_us_per_fix"] = out["engine_cpu_us_per_fix"] - out["owner_cpu_us_per_fix"]
        print(f"  owner CPU {out['owner_cpu_us_per_fix']:.1f} µs per fix, "
              f"API {out['api_cpu_us_per_fix']:.1f} µs")  # fmt: skip
    print(f"  applied {out['applied_fixes_per_s']:,.0f} fixes/s (drained {t2 - t1:.1f} s after)")
    return out


def spy(a: argparse.Namespace, name: str, pid: int) -> subprocess.Popen[bytes]:
    """py-spy of `pid` and its Python children during one loaded run, into e2e-<name>.txt."""
    path = a.out / f"e2e-{name}.txt"
    cmd = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "-r", "100", "-d",
           str(int(a.seconds)), "-f", "raw", "-o", str(path)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def single_bodies(n: int) -> list[bytes]:
    now = time.time()
    rows = [
        {"customer_id": f"single-{i % 500}", "lat": LAT0, "lon": LON0 + (i % 7) * 1e-4,
         "ts": now - 600 + i * 1e-3, "accuracy_m": 8.0}
        for i in range(n)
    ]  # fmt: skip
    return [json.dumps({"pings": [r]}).encode() for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0, help="per loaded run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fences", type=int, default=300)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--batches", type=int, default=400, help="distinct bodies, sent in turn")
    ap.add_argument("--procs", type=int, default=4, help="uploading processes")
    ap.add_argument("--conns", type=int, default=4, help="connections per uploading process")
    ap.add_argument("--workers", type=int, default=2, help="`serve --workers`")
    ap.add_argument(
        "--split", action="store_true", help="`serve --role api` + one `serve --role worker`"
    )
    ap.add_argument("--rate", type=float, default=1000.0, help="single fixes per second")
    ap.add_argument("--singles", type=int, default=10_000)
    ap.add_argument(
        "--single-workers",
        type=int,
        default=1,
        help="`serve --workers` for the single fixes (on an engine of their own unless equal to"
        " --workers): at 1 k single fixes/s one process answered p50 5.8 / p99 39 ms and two"
        " 44 / 305 ms on these 2 cores, each an API and 8 owners beside PostgreSQL and NATS",
    )
    ap.add_argument("--settle", type=float, default=10.0, help="s before the single fixes")
    ap.add_argument("--profile", default="", help="record py-spy into bench/e2e-<name>.txt")
    ap.add_argument(
        "--profile-api",
        default="",
        help="with --split: record py-spy of the API processes into bench/e2e-<name>.txt",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    a = ap.parse_args()
    a.out.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    bodies = make_batches(rng, a.batches, 500, a.customers, time.time() - 6 * 3600)
    started = time.perf_counter()
    port = free_port()
    print(f"floor (scripts/floor_app.py, uvicorn 2 processes) on {os.cpu_count()} cores")
    floor_proc = start_floor(port)
    try:
        floor = loaded(port, [request("/v1/pings", b, JSON) for b in bodies], a)
    finally:
        floor_proc.terminate()
        floor_proc.wait(timeout=30)
    split = " --role api, and one --role worker" if a.split else ""
    print(f"engine (geo-engine serve --workers {a.workers}{split})")
    eng = engine(lambda h: [request("/v1/pings", b, h) for b in bodies], a, rng)
    doc = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python":
                    platform.python_version(), "database": "DATABASE_URL"
                    if os.environ.get("DATABASE_URL") else "embedded pgserver"},
        "command": "python scripts/bench_e2e.py " + " ".join(sys.argv[1:]),
        "fences": a.fences, "customers": a.customers, "batch_size": 500, "seconds": a.seconds,
        "uploaders": {"procs": a.procs, "conns": a.conns}, "workers": a.workers,
        "topology": "api + worker" if a.split else "all",
        "floor": floor, "engine": eng,
        "ratio_to_floor": eng["fixes_per_s"] / floor["fixes_per_s"],
        "wall_s": time.perf_counter() - started,
    }  # fmt: skip
    (a.out / "e2e.json").write_text(json.dumps(doc, indent=2))
    (a.out / "e2e.md").write_text(render(doc))
    print(render(doc))


def render(d: dict[str, Any]) -> str:
    e, s = d["engine"], d["engine"]["single"]
    n = len(e["runs"])
    owner = ""
    if "owner_cpu_us_per_fix" in e:
        owner = f"| partition owner's CPU per fix | {e['owner_cpu_us_per_fix']:.1f} µs |\n"
    if "api_cpu_us_per_fix" in e:
        owner += f"| API processes' CPU per fix | {e['api_cpu_us_per_fix']:.1f} µs |\n"
    return (
        f"End to end through `POST /v1/pings`: {d['fences']} fences, {d['customers']:,} "
        f"customers, 500-fix batches from {d['uploaders']['procs']} processes × "
        f"{d['uploaders']['conns']} connections; `{d['command']}`\n\n"
        "| measure | value |\n|---|---:|\n"
        f"| floor: bare ASGI decode (uvicorn ×2, uvloop, httptools), fixes/s (median of {n}) "
        f"| {d['floor']['fixes_per_s']:,.0f} |\n"
        f"| engine (`serve --workers {d['workers']}{topology(d)}`): accepted fixes/s "
        f"(median of {n}) "
        f"| {e['fixes_per_s']:,.0f} |\n"
        f"| engine ÷ floor | {d['ratio_to_floor']:.1%} |\n"
        f"| applied fixes/s, first request to every owner caught up | "
        f"{e['applied_fixes_per_s']:,.0f} |\n"
        f"| engine CPU per fix, accepted and applied | {e['engine_cpu_us_per_fix']:.1f} µs |\n"
        f"{owner}"
        f"| single fix at {s['rate']:g} req/s (`serve --workers {s.get('workers', d['workers'])}`):"
        f" p50 / p99 | {s['p50_ms']:.2f} / "
        f"{s['p99_ms']:.2f} ms |\n"
    )


def topology(d: dict[str, Any]) -> str:
    return " --role api` + `serve --role worker" if d.get("topology") == "api + worker" else ""


if __name__ == "__main__":
    main()
