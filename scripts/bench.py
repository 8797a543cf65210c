"""All the benchmarks in one command, one run: each part's script as a subprocess, their JSON
collected into <out>/results.json and one Markdown table per part into <out>/results.md, with the
machine the figures come from. The README's benchmark tables are that Markdown (--readme
writes them there).

    python scripts/bench.py            # the figures the README quotes (~5 min on 2 cores)
    python scripts/bench.py --readme   # the same, and the README's tables replaced by them
    python scripts/bench.py --quick --out /tmp/bench   # reduced sizes: checks that all runs

Parts: fence matching (scripts/bench_matching.py; --density adds its constant-density study,
~3 min more), PostGIS (scripts/bench_postgis.py, only when BENCH_POSTGIS_URL is set), end to end
through HTTP (bench_e2e.py), profiles and velocity (bench_profile.py), decisions
(bench_decision.py), memory per active customer (bench_memory.py), the outbox relay
(bench_relay.py). Seeds are fixed in each script; each takes the median of several runs after a
warm-up (the slowest yardsticks, e.g. STRtree at 100 k fences, are timed once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine_info import cpu_name, python_loop_ns

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"

# part -> (script, arguments in full, arguments with --quick)
PARTS: dict[str, tuple[str, str, str]] = {
    "matching": (
        "bench_matching.py",
        "--points 1000000 --fences 10,1000,10000,100000 --runs 3 --slow-s 8",
        "--quick --points 100000 --fences 10,1000 --runs 1",
    ),
    "postgis": ("bench_postgis.py", "", "--points 20000 --runs 1 --fences 10"),
    "e2e": (
        "bench_e2e.py",
        "--seconds 10 --runs 3 --singles 10000 --rate 1000",
        "--seconds 3 --runs 1 --fences 100 --customers 2000 --batches 40 --singles 500 --rate 200"
        " --settle 1",
    ),
    "profile": (
        "bench_profile.py",
        "--batches 20 --bytes-customers 20000",
        "--batches 5 --api-customers 2000 --customers 20000 --bytes-customers 10000",
    ),
    "decision": (
        "bench_decision.py",
        "--events 5000 --runs 3 --backtest-events 50000",
        "--events 2000 --runs 1 --backtest-events 10000",
    ),
    "memory": ("bench_memory.py", "--customers 10000,100000", "--customers 2000,5000"),
    "relay": (
        "bench_relay.py",
        "--rows 2000 --relays 2 --rate 50 --seconds 8 --poll 1 0.1",
        "--rows 300 --relays 2 --rate 20 --seconds 2 --poll 0.1",
    ),
}
HAS_OUT = {"matching", "e2e", "profile", "memory", "relay"}  # the others write to <repo>/bench
README = ROOT / "README.md"
MARKERS = ("<!-- bench.py results: start -->", "<!-- bench.py results: end -->")


def relay_writes_json() -> bool:
    """bench_relay.py is a part only once it writes <out>/relay.json (it takes --out)."""
    return '"--out"' in (SCRIPTS / "bench_relay.py").read_text(encoding="utf-8")


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
    cpu = cpu_name()
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
        "python_loop_ns": round(python_loop_ns(), 1),
    }


def run_part(name: str, quick: bool, out: Path, extra: list[str]) -> dict[str, Any]:
    """Run one script; return {"status", "seconds", "result" (its JSON), "error"}."""
    script, full, reduced = PARTS[name]
    args = [sys.executable, str(SCRIPTS / script), *(reduced if quick else full).split(), *extra]
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


def _scalars(doc: Any, prefix: str = "") -> list[list[str]]:
    """Numbers of a JSON document, flattened (a part this script has no table for)."""
    rows: list[list[str]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k != "machine":
                rows += _scalars(v, f"{prefix}{k} ")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        rows.append([prefix.strip(), _f(doc)])
    return rows


def tables(parts: dict[str, dict[str, Any]]) -> list[str]:
    md: list[str] = []

    def table(title: str, head: list[str], rows: list[list[str]], note: str = "") -> None:
        md.extend([f"### {title}", ""])
        if note:
            md.extend([note, ""])
        md.append("| " + " | ".join(head) + " |")
        md.append("|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|")
        md.extend("| " + " | ".join(r) + " |" for r in rows)
        md.append("")

    for name, part in parts.items():
        if part["status"] != "ok":
            err = part.get("error", "")[-300:]
            md.extend([f"### {name}", "", f"**{part['status']}**: {err}", ""])
    ok = {n: p["result"] for n, p in parts.items() if p["status"] == "ok"}
    secs = {n: p["seconds"] for n, p in parts.items()}
    if r := ok.get("matching"):
        rows = [
            [f"{x['fences']:,}", f"{x['build_s']:.1f}", _m(x["match_pings_per_s"]),
             _m(x["h3_pings_per_s"]), _m(x.get("strtree_pings_per_s")),
             f"{x['index_vs_h3']:.2f}",
             f"{x['index_speedup_vs_strtree']:.1f}×" if x.get("strtree_s") else "–"]
            for x in r["results"]
        ]  # fmt: skip
        head = ["fences", "build s", "index pings/s", "H3 cell alone", "STRtree",
                "index / H3 time", "vs STRtree"]  # fmt: skip
        few = [
            f"{x['fences']:,} fences on {_m(x['strtree_points'])} points"
            for x in r["results"]
            if (x.get("strtree_points") or r["points"]) < r["points"]
        ]
        note = (f"{r['points']:,} random points in Paris, H3 res {r['resolution']}, median of "
                f"{r['runs']} runs after a warm-up (a method over 8 s a run: one run"
                + (f"; STRtree at {', '.join(few)}: a rate" if few else "") + "); "
                f"`scripts/bench_matching.py`, {secs['matching']} s")  # fmt: skip
        table("Fence matching", head, rows, note)
    if r := ok.get("postgis"):
        rows = [
            [f"{x['fences']:,}", _m(x["engine_pings_per_s"]), _m(x["postgis_pings_per_s"]),
             f"{x['engine_vs_postgis']:.0f}×"]
            for x in r["rows"]
        ]  # fmt: skip
        pts = {x.get("points") for x in r["rows"]} - {None}
        note = ((f"{', '.join(f'{p:,}' for p in sorted(pts))} random points, " if pts else "")
                + "the same fences; PostGIS: GiST index, `ST_Intersects` join (circles stored "
                f"as 64-gons), PostgreSQL {r.get('postgres', '?').split()[0]}, PostGIS "
                f"{r.get('postgis', '?')} on the same cores; `scripts/bench_postgis.py`, "
                f"{secs['postgis']} s")  # fmt: skip
        head = ["fences", "index pings/s", "PostGIS GiST pings/s", "ratio"]
        table("Against PostGIS", head, rows, note)
    if r := ok.get("e2e"):
        e, one = r["engine"], r["engine"]["single"]
        n = len(e["runs"])
        rows = [
            [f"floor: bare ASGI decode of the same bodies (uvicorn ×2, uvloop, httptools), "
             f"fixes/s (median of {n})", _f(r["floor"]["fixes_per_s"])],
            [f"engine `serve --workers {r['workers']}`: accepted fixes/s, 202 once durable "
             f"(median of {n})", _f(e["fixes_per_s"])],
            ["engine ÷ floor", f"{r['ratio_to_floor']:.1%}"],
            ["applied fixes/s, first request until every owner caught up",
             _f(e["applied_fixes_per_s"])],
            ["engine CPU per fix, accepted and applied", f"{e['engine_cpu_us_per_fix']:.1f} µs"],
            [f"single fix at {one['rate']:g} req/s (open loop, `serve --workers "
             f"{one.get('workers', r['workers'])}`), p50 / p99",
             f"{one['p50_ms']:.1f} / {one['p99_ms']:.1f} ms"],
        ]  # fmt: skip
        note = (f"{r['machine']['database']} and NATS on the same cores, {r['fences']:,} "
                f"fences, {r['customers']:,} customers, 500-fix batches from "
                f"{r['uploaders']['procs']} processes × {r['uploaders']['conns']} connections "
                f"(scripts/loadgen.py); `scripts/bench_e2e.py`, {secs['e2e']} s")  # fmt: skip
        table("End to end through HTTP", ["measure", "value"], rows, note)
    if r := ok.get("decision"):
        keys = ("decide_p50_us", "decide_p99_us", "path_p50_us", "path_p99_us",
                "pathfrozen_p50_us", "pathfrozen_p99_us")  # fmt: skip
        rows = []
        for spread in (False, True):
            mine = [x for x in r["runs"] if x["spread"] is spread]
            if mine:
                med = [statistics.median(x.get(k, float("nan")) for x in mine) for k in keys]
                what = "spread: 20 stores × 3 events" if spread else "worst: all on store enter"
                rows.append([f"{what} (median of {len(mine)})", *(f"{v:.1f}" for v in med)])
        head = ["events", "decide p50 µs", "p99 µs", "path p50 µs", "path p99 µs",
                "path, gc frozen (as served) p50 µs", "p99 µs"]  # fmt: skip
        note = (f"{r['campaigns']} live campaigns, {r['events']:,} events per run; backtest "
                f"{r['backtest_events_per_s']:,} events/s; `scripts/bench_decision.py`, "
                f"{secs['decision']} s")  # fmt: skip
        table("Decision latency in process", head, rows, note)
    if r := ok.get("memory"):
        rows = [
            [f"{x['customers']:,}", f"{x['traced_bytes_per_customer']['presence']:,}",
             f"{x['traced_bytes_per_customer']['profile']:,}",
             f"{x['traced_bytes_per_customer']['total']:,}", f"{x['rss_bytes_per_customer']:,}",
             f"{x['book_bytes'] / 1e6:.2f} MB"]
            for x in r["rows"]
        ]  # fmt: skip
        head = ["active customers", "presence B", "profile B", "total B", "RSS B",
                "decision book (fixed)"]  # fmt: skip
        note = (f"per customer: presence cursor, visit state for {r['inside_share']:.0%} inside "
                f"a store, profile slot, attributes, 3 consents, {r['events_per_customer']} "
                "events; bytes allocated (tracemalloc) and resident (RSS); "
                f"`scripts/bench_memory.py`, {secs['memory']} s")  # fmt: skip
        table("Memory per active customer", head, rows, note)
    if r := ok.get("profile"):
        api, vel = r["api"], r["velocity"]
        rows = [
            [f"events/s, {api['batch_size']}-event batches", _f(api["events_per_s"])],
            ["profile read in process, p50 / p99",
             f"{api['profile_read_us_p50']:.0f} / {api['profile_read_us_p99']:.0f} µs"],
            [f"velocity sweep of {vel['customers']:,} customers (steady)",
             f"{vel['sweep_s_steady_median']:.2f} s"],
        ]  # fmt: skip
        note = f"`scripts/bench_profile.py`, {secs['profile']} s"
        table("Profiles and velocity", ["measure", "value"], rows, note)
    if r := ok.get("relay"):
        note = ("Standard Webhooks gateway to a loopback receiver (real HTTP) in another "
                f"process; `scripts/bench_relay.py`, {secs['relay']} s")  # fmt: skip
        if isinstance(r.get("backlog"), dict) and isinstance(r.get("steady"), list):
            b = r["backlog"]
            rows = [[f"backlog of {b['rows']:,} drained by 2 relays: offers/s",
                     _f(b["offers_per_s"])],
                    ["rows attempted twice", f"{b['rows_attempted_twice']:,}"]]  # fmt: skip
            for st in r["steady"]:
                q = st["decision_to_first_attempt_s"]
                rows.append([f"at {st['rate_per_s']:g} offers/s, poll {st['poll_interval_s']:g} "
                             "s: decision → first attempt p50 / p99",
                             f"{q['p50'] * 1e3:,.0f} / {q['p99'] * 1e3:,.0f} ms"])  # fmt: skip
        else:  # a shape this script does not know: every number
            rows = _scalars(r)
        table("Outbox relay", ["measure", "value"], rows, note)
    return md


def to_readme(body: str, readme: Path = README) -> bool:
    """Replace the README's text between the two markers by `body`; False without markers."""
    text = readme.read_text(encoding="utf-8")
    pat = re.compile(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), re.S)
    if not pat.search(text):
        return False
    block = f"{MARKERS[0]}\n{body.strip()}\n{MARKERS[1]}"
    readme.write_text(pat.sub(lambda _: block, text, count=1), encoding="utf-8")
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes: checks it all runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    ap.add_argument("--only", default=None, help="comma-separated parts: " + ",".join(PARTS))
    ap.add_argument("--density", action="store_true", help="matching: constant-density study")
    ap.add_argument("--readme", action="store_true", help="write the tables into README.md")
    ap.add_argument(
        "--render", action="store_true", help="run nothing: tables again from <out>/results.json"
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.render:  # after a change of the tables' layout: the same run's figures, re-rendered
        publish(json.loads((a.out / "results.json").read_text()), a.out, a.readme)
        return
    names = a.only.split(",") if a.only else list(PARTS)
    if "postgis" in names and not os.environ.get("BENCH_POSTGIS_URL"):
        names.remove("postgis")
        print("== postgis: skipped (set BENCH_POSTGIS_URL to a database with PostGIS)")
    if "relay" in names and not relay_writes_json():
        names.remove("relay")
        print("== relay: skipped (scripts/bench_relay.py writes no JSON)")
    t0 = time.perf_counter()
    extra = {"matching": ["--density"]} if a.density else {}
    parts = {n: run_part(n, a.quick, a.out, extra.get(n, [])) for n in names}
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    doc = {
        "machine": machine(),
        "quick": a.quick,
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 1),
        "parts": parts,
    }
    last = a.out / "results.json"
    if a.only and last.exists():  # the parts not re-run keep the last run's figures, said so
        before = json.loads(last.read_text())
        kept = {n: p for n, p in before["parts"].items() if n not in parts}
        if kept:
            doc["parts"] = {**kept, **parts}
            doc["kept_from"] = before.get("kept_from") or {
                "commit": before["machine"]["commit"], "date": before["machine"]["date"],
                "parts": sorted(kept),
            }  # fmt: skip
            doc["kept_from"]["parts"] = sorted(kept)
    (a.out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    publish(doc, a.out, a.readme)
    if any(p["status"] != "ok" for p in parts.values()):
        raise SystemExit(1)


def kept_note(doc: dict[str, Any]) -> str:
    k = doc.get("kept_from")
    if not k:
        return ""
    rerun = ",".join(n for n in doc["parts"] if n not in k["parts"])
    kept = ", ".join(k["parts"])
    when = f"{k['commit']}, {k['date']}"
    return f" Re-run with `--only {rerun}`; {kept}: from the run of commit {when}."


def loop_note(m: dict[str, Any]) -> str:
    ns = m.get("python_loop_ns")  # absent from runs before it was measured
    return "" if ns is None else f" (a bare `for` loop: {ns:g} ns an iteration)"


def publish(doc: dict[str, Any], out: Path, readme: bool) -> None:
    """results.md from a run's document, and the README's tables with `readme`."""
    m, parts, quick = doc["machine"], doc["parts"], doc["quick"]
    cmd = "python scripts/bench.py" + (" --quick" if quick else "")
    body = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}{loop_note(m)}, database {m['database']}; commit {m['commit']}, "
        f"{m['date']}. "
        f"`{cmd}`: {doc['seconds']} s wall, {doc['cpu_seconds']} s CPU in all." + kept_note(doc),
        "",
        *tables(parts),
    ]
    title = "# Benchmarks" + (" (quick: reduced sizes, not the quoted figures)" if quick else "")
    (out / "results.md").write_text("\n".join([title, "", *body]))
    print(f"wrote {out / 'results.md'} from {out / 'results.json'}")
    if readme and not quick:
        done = to_readme("\n".join(body))
        print("README.md: tables replaced" if done else f"README.md: no {MARKERS[0]} marker")


if __name__ == "__main__":
    main()
