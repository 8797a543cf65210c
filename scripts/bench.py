"""All the benchmarks in one command, one run: each part's script as a subprocess, their JSON
collected into <out>/results.json and one Markdown table per part into <out>/results.md, with the
machine the figures come from.

    python scripts/bench.py            # the figures the README quotes (several minutes)
    python scripts/bench.py --quick --out /tmp/bench   # reduced sizes: checks that all runs

Parts: fence matching (scripts/bench_matching.py), PostGIS (scripts/bench_postgis.py, only when
BENCH_POSTGIS_URL is set), end to end through HTTP (bench_e2e.py), profiles and velocity
(bench_profile.py), decisions (bench_decision.py). Seeds are fixed in each script; each takes
the median of several runs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"

# part -> (script, arguments in full, arguments with --quick)
PARTS: dict[str, tuple[str, str, str]] = {
    "matching": (
        "bench_matching.py",
        "--points 1000000 --fences 10,1000,10000,100000",
        "--quick --points 100000 --fences 10,1000 --runs 1 --no-density",
    ),
    "postgis": ("bench_postgis.py", "", "--points 20000 --runs 1 --fences 10"),
    "e2e": (
        "bench_e2e.py",
        "",
        "--batches 10 --runs 1 --fences 100 --customers 2000 --singles 200 --rate 100",
    ),
    "profile": (
        "bench_profile.py",
        "",
        "--batches 5 --api-customers 2000 --customers 20000 --bytes-customers 10000",
    ),
    "decision": ("bench_decision.py", "", "--events 2000 --runs 1 --backtest-events 10000"),
}
HAS_OUT = {"matching", "e2e", "profile"}  # the others write to <repo>/bench


def embedded_env() -> dict[str, str]:
    """For bench_profile.py without DATABASE_URL: point it at the embedded server (the demo's,
    in .geo-engine), with the socket directory in PGHOST."""
    if os.environ.get("DATABASE_URL"):
        return {}
    from urllib.parse import parse_qs, urlsplit

    from adapters.db.connect import resolve_url

    url = resolve_url(None, ROOT / ".geo-engine")
    p = urlsplit(url)
    host = parse_qs(p.query).get("host", [""])[0]
    if not host:
        return {"DATABASE_URL": url}
    return {"DATABASE_URL": f"{p.scheme}://{p.netloc}{p.path}", "PGHOST": host}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        kb = next(
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )
        mem_gb = round(kb / 1024**2, 1)
    except (OSError, StopIteration, ValueError):
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or None,
        "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded pgserver",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_part(name: str, quick: bool, out: Path) -> dict[str, Any]:
    """Run one script; return {"status", "seconds", "result" (its JSON), "error"}."""
    script, full, reduced = PARTS[name]
    args = [sys.executable, str(SCRIPTS / script), *(reduced if quick else full).split()]
    if name in HAS_OUT:
        args += ["--out", str(out)]
    own = ROOT / "bench"
    # a script that only writes to <repo>/bench: keep the files there as they were
    saved = {}
    if name not in HAS_OUT and out.resolve() != own.resolve():
        saved = {p: p.read_bytes() for p in own.glob(f"{name}.*")}
    print(f"== {name}: {' '.join(args[1:])}", flush=True)
    t0 = time.perf_counter()
    env = {**os.environ, **(embedded_env() if name == "profile" else {})}
    if name == "e2e":
        # its synthetic phones record no consent: with the legal default every ping would be
        # dropped at the gate and the pipeline never measured
        env["GEO_ENGINE_REQUIRE_LOCATION_CONSENT"] = "false"
    # the script's output is shown as it comes (some parts take minutes) and its tail kept
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print("   " + line.rstrip()[:200], flush=True)
        lines = [*lines[-40:], line]
    proc.wait()
    took = round(time.perf_counter() - t0, 1)
    if name not in HAS_OUT and out.resolve() != own.resolve():
        for ext in ("json", "md"):
            made = own / f"{name}.{ext}"
            if made.exists():
                shutil.move(made, out / made.name)
        for p, data in saved.items():
            p.write_bytes(data)
    doc: dict[str, Any] = {"status": "ok", "seconds": took, "args": args[2:]}
    if proc.returncode != 0:
        doc.update(status="failed", error="".join(lines)[-2000:])
        print(f"   failed after {took} s", flush=True)
        return doc
    doc["result"] = json.loads((out / f"{name}.json").read_text())
    print(f"   done in {took} s", flush=True)
    return doc


def _f(v: Any, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v < 100:
        return f"{v:,.1f}{unit}"
    return f"{v:,.0f}{unit}"


def _m(v: Any) -> str:
    return "–" if v is None else f"{v / 1e6:,.2f} M" if v >= 1e6 else f"{v / 1e3:,.0f} k"


def tables(parts: dict[str, dict[str, Any]]) -> list[str]:
    md: list[str] = []

    def table(title: str, head: list[str], rows: list[list[str]], note: str = "") -> None:
        md.extend([f"## {title}", ""])
        if note:
            md.extend([note, ""])
        md.append("| " + " | ".join(head) + " |")
        md.append("|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|")
        md.extend("| " + " | ".join(r) + " |" for r in rows)
        md.append("")

    for name, part in parts.items():
        if part["status"] != "ok":
            err = part.get("error", "")[-300:]
            md.extend([f"## {name}", "", f"**{part['status']}**: {err}", ""])
    if (p := parts.get("matching")) and p["status"] == "ok":
        r = p["result"]
        rows = [
            [f"{x['fences']:,}", _m(x["match_pings_per_s"]), _m(x["h3_pings_per_s"]),
             _m(x.get("strtree_pings_per_s")), f"{x['match_s'] / x['h3_s']:.2f}",
             f"{x['strtree_s'] / x['match_s']:.1f}×" if x.get("strtree_s") else "–"]
            for x in r["results"]
        ]  # fmt: skip
        head = [
            "fences",
            "index pings/s",
            "H3 cell alone",
            "STRtree",
            "index / H3 time",
            "vs STRtree",
        ]
        table("Fence matching", head, rows, f"{r['points']:,} random points in Paris, H3 res "
              f"{r['resolution']}, median of {r['runs']} runs ({p['seconds']} s)")  # fmt: skip
    if (p := parts.get("postgis")) and p["status"] == "ok":
        rows = [
            [f"{x['fences']:,}", _m(x["engine_pings_per_s"]), _m(x["postgis_pings_per_s"]),
             f"{x['engine_vs_postgis']:.0f}×"]
            for x in p["result"]["rows"]
        ]  # fmt: skip
        table("Against PostGIS", ["fences", "index pings/s", "PostGIS GiST pings/s", "ratio"], rows)
    if (p := parts.get("e2e")) and p["status"] == "ok":
        r = p["result"]
        lat = r["single_ping_latency_ms"]
        rows = [
            [f"pings/s, {r['batch_size']}-ping batches, {r['concurrency']} uploaders "
             f"(median of {len(r['pings_per_s_runs'])})", _f(r["pings_per_s_median"])],
            [f"single-ping latency at {r['single_ping_rate_per_s']:g} req/s, p50 / p99",
             f"{lat['p50']:.1f} / {lat['p99']:.1f} ms"],
        ]  # fmt: skip
        note = f"{r['fences']:,} fences, location consent gate off (no consent records)"
        table("End to end through HTTP", ["measure", "value"], rows, note)
    if (p := parts.get("profile")) and p["status"] == "ok":
        r = p["result"]
        api, vel, mem = r["api"], r["velocity"], r["memory"]
        rows = [
            [f"events/s, {api['batch_size']}-event batches", _f(api["events_per_s"])],
            ["profile read in process, p50 / p99",
             f"{api['profile_read_us_p50']:.0f} / {api['profile_read_us_p99']:.0f} µs"],
            [f"velocity sweep of {vel['customers']:,} customers (steady)",
             f"{vel['sweep_s_steady_median']:.2f} s"],
            ["presence + velocity state per active customer",
             f"{mem['total_bytes_per_customer']:.0f} B"],
        ]  # fmt: skip
        table("Profiles and velocity", ["measure", "value"], rows)
    if (p := parts.get("decision")) and p["status"] == "ok":
        r = p["result"]
        rows = [
            ["spread" if x["spread"] else "one store", f"{x['decide_p50_us']:.1f}",
             f"{x['decide_p99_us']:.1f}", f"{x['path_p50_us']:.1f}", f"{x['path_p99_us']:.1f}"]
            for x in r["runs"]
        ]  # fmt: skip
        head = ["events", "decide p50 µs", "p99 µs", "path p50 µs", "path p99 µs"]
        note = (f"{r['campaigns']} live campaigns, {r['events']:,} events per run; backtest "
                f"{r['backtest_events_per_s']:,} events/s")  # fmt: skip
        table("Decision latency in process", head, rows, note)
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes: checks it all runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    ap.add_argument("--only", default=None, help="comma-separated parts: " + ",".join(PARTS))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    names = a.only.split(",") if a.only else list(PARTS)
    if "postgis" in names and not os.environ.get("BENCH_POSTGIS_URL"):
        names.remove("postgis")
        print("== postgis: skipped (set BENCH_POSTGIS_URL to a database with PostGIS)")
    t0 = time.perf_counter()
    parts = {n: run_part(n, a.quick, a.out) for n in names}
    doc = {
        "machine": machine(),
        "quick": a.quick,
        "seconds": round(time.perf_counter() - t0, 1),
        "parts": parts,
    }
    (a.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    m = doc["machine"]
    head = [
        "# Benchmarks" + (" (quick: reduced sizes, not the quoted figures)" if a.quick else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}, database {m['database']}; commit {m['commit']}, {m['date']}; "
        f"{doc['seconds']} s in all. `python scripts/bench.py"
        + (" --quick" if a.quick else "")
        + "`.",
        "",
    ]
    (a.out / "results.md").write_text("\n".join(head + tables(parts)))
    print(f"wrote {a.out / 'results.json'} and {a.out / 'results.md'}")
    if any(p["status"] != "ok" for p in parts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
