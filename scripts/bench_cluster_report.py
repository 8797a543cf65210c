"""The cluster benchmark's report: py-spy profile summaries, the Markdown of bench/cluster.md
and its reading of the figures (scripts/bench_cluster.py measures; this renders)."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEARTBEAT_S = 1.0  # the engine's defaults, set explicitly so that the figures say what they are
LEASE_TTL_S = 5.0
EPOLL = "epoll wait (the event loop with nothing to do)"
ENGINE = "engine: geo_engine/, geofences/"
ADAPTERS = "engine: adapters/"
THREADS = "thread hand-offs (threading, queue)"
CATEGORIES = [  # (label, pattern in the innermost frame "function (file:line)"), first wins;
    # py-spy names a file by its path under site-packages or the standard library
    (EPOLL, r"select \(selectors\.py"),
    ("socket send syscalls", r"\.(write|writelines|sendall)\b.*(selector_events|socket)\.py"),
    ("socket receive", r"(_read_ready|recv).*(selector_events|socket)\.py"),
    ("asyncpg (PostgreSQL driver)", r"\(asyncpg/"),
    ("nats-py (bus client)", r"\(nats/"),
    ("HTTP: uvicorn, starlette, fastapi, anyio, h11", r"\((uvicorn|starlette|fastapi|anyio|h11)/"),
    (THREADS, r"\((threading|queue)\.py"),
    ("pydantic", r"\(pydantic"),
    ("msgspec", r"\(msgspec"),
    ("asyncio event loop", r"\(asyncio/"),
    ("shapely, h3, numpy", r"\((shapely|h3|h3ronpy|numpy)/"),
    (ENGINE, r"\((geo_engine|geofences)/"),
    (ADAPTERS, r"\(adapters/"),
    ("prometheus_client", r"\(prometheus_client/"),
    ("Python standard library, other", r"\((<frozen|<string>|[a-z_]+\.py:|[a-z_]+/)"),
]
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def read_folded(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            stacks.append((stack.split(";"), int(n)))
    return stacks


def summarise_profile(path: Path, seconds: float) -> dict[str, Any]:
    """Where the sampled process spent its (non-idle) time: by library of the innermost frame,
    the heaviest innermost functions, and the engine functions that include the most."""
    stacks = read_folded(path)
    total = sum(n for _, n in stacks) or 1
    by_cat: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        cat = next((label for label, pat in CATEGORIES if re.search(pat, frames[-1])), "other")
        by_cat[cat] += n
        leaf[short(frames[-1])] += n
        seen = set()
        for f in frames:
            fm = _FRAME.match(f)
            if (
                fm
                and re.match(r"(geo_engine|geofences|adapters)/", fm.group("file"))
                and fm.group("fn") not in ("<module>", "serve", "_worker")
            ):
                key = short(f, line=False)
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    return {
        "samples": total,
        "active_fraction": round(total / (100 * seconds), 3),  # 100 Hz, idle not sampled
        "by_library": {k: round(v / total, 3) for k, v in by_cat.most_common()},
        "top_leaf": [(k, round(v / total, 3)) for k, v in leaf.most_common(12)],
        "top_engine_inclusive": [(k, round(v / total, 3)) for k, v in inclusive.most_common(15)],
    }


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def short(frame: str, line: bool = True) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('fn')} ({file}{':' + m.group('line') if line and m.group('line') else ''})"


# -- the report ---------------------------------------------------------------------------
def med(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["applied_per_s"])[len(runs) // 2]


def summarise(doc: dict[str, Any]) -> None:
    t = doc["throughput"]
    for key in ("1", "2"):
        runs = t["runs"][key]
        t.setdefault("median", {})[key] = {
            "accepted_per_s": med([r["accepted_per_s"] for r in runs]),
            "applied_per_s": med([r["applied_per_s"] for r in runs]),
            "applied_per_s_while_loading": med([r["applied_per_s_while_loading"] for r in runs]),
            "applied_per_s_draining": med(
                [r["applied_per_s_draining"] for r in runs if r["applied_per_s_draining"]]
            ),
            "until_lag_0_s": med([r["until_lag_0_s"] for r in runs]),
            "drain_s": med([r["drain_s"] for r in runs]),
        }
    m = t["median"]
    t["ratio_applied_2_over_1"] = m["2"]["applied_per_s"] / m["1"]["applied_per_s"]
    t["ratio_accepted_2_over_1"] = m["2"]["accepted_per_s"] / m["1"]["accepted_per_s"]
    lag: dict[str, dict[str, dict[str, float]]] = {}
    for key in ("1", "2"):
        pooled: dict[str, list[int]] = {}
        for r in t["runs"][key]:
            for p, xs in r["lag_samples"].items():
                pooled.setdefault(p, []).extend(xs)
        lag[key] = {p: {"max": max(xs), "median": med(xs)} for p, xs in pooled.items() if xs}
    doc["lag"] = lag
    k = doc["takeover"]
    if k["tries"]:
        k["median"] = {
            f: med([x[f] for x in k["tries"]])
            for f in ("owned_by_survivor_s", "caught_up_s", "all_lags_0_s")
        }


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def render(doc: dict[str, Any]) -> str:
    m, a, t = doc["machine"], doc["args"], doc["throughput"]
    med_ = t["median"]
    ratio = t["ratio_applied_2_over_1"]
    runs = a["runs"]
    lines = [
        "# Cluster benchmark" + (" (quick: 1 run, short loads)" if a["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Python "
        f"{m['python']}; PostgreSQL {m['postgresql']} ({m['database']}), nats-server "
        f"{m['nats_server']}. Commit {m['commit']}"
        + (
            f" (working tree with uncommitted changes in {len(m['uncommitted_files'])} files)"
            if m["uncommitted_files"]
            else ""
        )
        + f", {m['date']}; {doc['seconds']:.0f} s wall.",
        "",
        f"Command: `{doc['command']}`",
        "",
        "One API process (`serve --role api`) and 1 or 2 worker processes (`serve --role worker`)"
        f" on this machine, with PostgreSQL and NATS on it too; heartbeat {HEARTBEAT_S:g} s, lease"
        f" ttl {LEASE_TTL_S:g} s (the defaults). {a['fences']} store fences (POST"
        f" /v1/geofences/import), {a['customers']:,} customers walking around them, 500-fix"
        f" batches posted without wait (202) by {a['concurrency']} uploaders for {a['seconds']:g}"
        f" s; each run on a fresh database and stream with {16} partitions, after a warm-up.",
        "",
        "## 1. Throughput, 1 and 2 workers",
        "",
        "applied/s = fixes applied (rows in raw_fixes) / time from the load's start until every"
        " partition's applied sequence reached the end of its log (lag 0). Median of"
        f" {runs} run{'s' if runs > 1 else ''}.",
        "",
        "| workers | accepted/s (202) | applied/s | applied/s while loading | applied/s"
        " after the load (draining) | load end → lag 0 |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("1", "2"):
        x = med_[key]
        lines.append(
            f"| {key} | {fmt(x['accepted_per_s'])} | **{fmt(x['applied_per_s'])}** |"
            f" {fmt(x['applied_per_s_while_loading'])} | {fmt(x['applied_per_s_draining'])} |"
            f" {fmt(x['drain_s'], 1)} s |"
        )
    lines += [
        "",
        f"**Ratio 2 workers ÷ 1 worker: applied/s × {ratio:.2f}** (accepted/s ×"
        f" {t['ratio_accepted_2_over_1']:.2f}).",
        "",
        "Every run (other processes = CPU of this machine's other jobs meanwhile, in cores:"
        " the figures move with it; transactions = the database's commits, pool resets and"
        " heartbeats included):",
        "",
        "| workers | run | accepted | accepted/s | applied/s | load s | until lag 0 s |"
        " commands | fixes/command | transactions/command | other processes, loading /"
        " draining |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ("1", "2"):
        for i, r in enumerate(t["runs"][key], 1):
            lines.append(
                f"| {key} | {i} | {r['accepted']:,} | {fmt(r['accepted_per_s'])} |"
                f" {fmt(r['applied_per_s'])} | {r['load_s']:.1f} | {r['until_lag_0_s']:.1f} |"
                f" {r['commands']:,} | {fmt(r['fixes_per_command'], 1)} |"
                f" {fmt(r['transactions_per_command'], 2)} |"
                f" {cores(r, 'cpu_loading', 'other processes'):.2f} /"
                f" {cores(r, 'cpu_draining', 'other processes'):.2f} |"
            )
    lines += [
        "",
        "### Where the CPU went (median run of each; cores used, from /proc schedstat)",
        "",
        "Cores = CPU seconds / wall seconds of the phase (2 = the whole machine); run queue ="
        " seconds per second its threads were ready but waiting for a CPU.",
        "",
        "| process | 1 worker, loading | run queue | 1 worker, draining | 2 workers, loading"
        " | run queue | 2 workers, draining |",
        "|---|---|---|---|---|---|---|",
    ]
    r1, r2 = median_run(t["runs"]["1"]), median_run(t["runs"]["2"])
    names = list(dict.fromkeys([*r1["cpu_loading"], *r2["cpu_loading"]]))
    order = ["api", "worker", "postgresql (this database)", "postgresql (server processes)"]
    order += ["nats-server", "loader (this script)", "other processes", "machine (all processes)"]
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    for n in names:

        def g(r: dict[str, Any], phase: str, f: str, n: str = n) -> str:
            v = r[phase].get(n, {}).get(f)
            return fmt(v, 2)

        lines.append(
            f"| {n}{' (all)' if n == 'worker' else ''} | {g(r1, 'cpu_loading', 'cores')} |"
            f" {g(r1, 'cpu_loading', 'runqueue')} | {g(r1, 'cpu_draining', 'cores')} |"
            f" {g(r2, 'cpu_loading', 'cores')} | {g(r2, 'cpu_loading', 'runqueue')} |"
            f" {g(r2, 'cpu_draining', 'cores')} |"
        )
    lines += ["", "## 2. Takeover after kill -9 (2 workers, light load: 1,000 fixes/s)", ""]
    k = doc["takeover"]
    lines += [
        "Seconds from the kill until: every partition is owned by the survivor (/v1/cluster"
        " polled every 100 ms); it has applied everything the log held by then (each"
        " partition's applied_seq at the end of its log, from NATS); /v1/cluster shows it owning"
        " all with every lag 0 (lags are written by the owner's heartbeat).",
        "",
        "| try | partitions taken over | owned by the survivor | caught up with the log |"
        " all lags 0 |",
        "|---|---|---|---|---|",
    ]
    for i, x in enumerate(k["tries"], 1):
        lines.append(
            f"| {i} | {x['partitions_moved']} | {x['owned_by_survivor_s']:.2f} s |"
            f" {x['caught_up_s']:.2f} s | {x['all_lags_0_s']:.2f} s |"
        )
    if k.get("median"):
        km = k["median"]
        lines.append(
            f"| **median** | | **{km['owned_by_survivor_s']:.2f} s** |"
            f" **{km['caught_up_s']:.2f} s** | **{km['all_lags_0_s']:.2f} s** |"
        )
    lines += [
        "",
        "## 3. Lag under load (the runs of part 1)",
        "",
        "The lag each owner reported for its partitions (messages of the partition after the"
        " last applied one; one message = one batch's fixes of that partition, ≈ 500/16 = 31"
        " fixes), sampled every 0.5 s from the load's start until lag 0, all runs pooled.",
        "",
        "| partition | 1 worker: max | 1 worker: median | 2 workers: max | 2 workers: median |",
        "|---|---|---|---|---|",
    ]
    lag = doc["lag"]
    for p in range(16):
        a1, a2 = lag["1"].get(str(p), {}), lag["2"].get(str(p), {})
        lines.append(
            f"| {p} | {fmt(a1.get('max'))} | {fmt(a1.get('median'))} | {fmt(a2.get('max'))} |"
            f" {fmt(a2.get('median'))} |"
        )
    s = doc["simulation"]
    lines += [
        "",
        f"## 4. {a['sim_workers']} workers, {a['sim_partitions']} partitions (light load:"
        " 500 fixes/s)",
        "",
        "Workers started one by one, each once the previous join was balanced; then one stopped"
        " with SIGTERM (its leases released at once) and one killed with -9 (its leases expire"
        f" after the {LEASE_TTL_S:g} s ttl). Spread = partitions per live worker, in order of"
        " start; moved = partitions that changed owner (first assignments not counted); minimum"
        " = what the step has to move; time = from the joiner's `up` line (or the signal) until"
        " /v1/cluster (polled every 100 ms) shows every partition owned by a live worker in a"
        " fair share.",
        "",
        "| step | live workers | spread | moved | minimum | most unowned at once |"
        " time to full ownership |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in s:
        if "error" in x:
            lines.append(f"| {x['event']} | {x['workers']} | – | – | – | – | **not balanced** |")
            continue
        lines.append(
            f"| {x['event']} | {x['workers']} | {' '.join(map(str, x['spread']))} |"
            f" {x['moved']} | {x['minimum_moves']} | {x['max_unowned_seen']} |"
            f" {x['to_full_ownership_s']:.2f} s |"
        )
    for x in s:
        if "error" not in x:
            continue
        lines += [
            "",
            f"**{x['event']}: {x['error']}.** The spread as /v1/cluster showed it (each change,"
            " seconds from the step's start; none = partitions without an owner), then the"
            " last lines each worker logged:",
            "",
            "```",
            *x["timeline"][-40:],
            "",
            *[f"{w}: {ln}" for w, lns in x["worker_logs"].items() for ln in lns],
            "```",
        ]
    prof = doc.get("profile")
    if prof:
        lines += [
            "",
            "## Profile of the 2-worker run (py-spy, 100 Hz, during the load)",
            "",
            f"An extra 2-worker run with py-spy attached to one worker and to the API for the"
            f" {a['seconds']:g} s of load (not counted above). Folded stacks:"
            + ", ".join(f" `{v}`" for v in prof["files"].values())
            + " (open with speedscope or inferno). Active = share of the wall time the process"
            " had a thread running or ready to run (py-spy does not sample idle threads).",
            "",
        ]
        for who in ("worker", "api"):
            if who not in prof["summary"]:
                continue
            ps = prof["summary"][who]
            lines += [
                f"**{who}**: active {ps['active_fraction']:.0%} of the time; by library of the"
                " innermost frame:",
                "",
                "| library | share of samples |",
                "|---|---|",
                *[f"| {k} | {v:.0%} |" for k, v in ps["by_library"].items() if v >= 0.01],
                "",
                "| engine function, with what it calls (a middleware: the whole request) | share |",
                "|---|---|",
                *[f"| `{k}` | {v:.0%} |" for k, v in ps["top_engine_inclusive"][:10]],
                "",
            ]
    lines += ["", "## Reading", "", *doc.get("reading", []), ""]
    return "\n".join(lines)


def cores(r: dict[str, Any], phase: str, name: str) -> float:
    v = r[phase].get(name, {}).get("cores")
    return float(v or 0.0)


def reading(doc: dict[str, Any]) -> list[str]:
    """The short reading of the figures, from the figures (and what the code says of them)."""
    t = doc["throughput"]
    m1, m2 = t["median"]["1"], t["median"]["2"]
    ratio = t["ratio_applied_2_over_1"]
    r1, r2 = median_run(t["runs"]["1"]), median_run(t["runs"]["2"])
    n = doc["machine"]["cores"]
    pg = ("postgresql (this database)", "postgresql (server processes)")
    busy = "machine (all processes)"

    def pgc(r: dict[str, Any], phase: str) -> float:
        return sum(cores(r, phase, x) for x in pg)

    idle1 = cores(r1, "cpu_draining", busy) < 0.8 * n
    full2 = cores(r2, "cpu_loading", busy) >= 0.9 * n
    per_cmd = [
        1000 * w / (m["applied_per_s_draining"] / r["fixes_per_command"])
        for w, m, r in ((1, m1, r1), (2, m2, r2))
    ]
    out = [
        f"- **Scaling**: 1 worker applies {m1['applied_per_s']:,.0f} fixes/s, 2 workers"
        f" {m2['applied_per_s']:,.0f}: × {ratio:.2f}"
        + (" (≥ 1.5)." if ratio >= 1.5 else " (< 1.5).")
        + f" After the load, with the API idle, they drain at {m1['applied_per_s_draining']:,.0f}"
        f" and {m2['applied_per_s_draining']:,.0f} fixes/s (× "
        f"{m2['applied_per_s_draining'] / m1['applied_per_s_draining']:.2f}). The API accepts"
        f" {m1['accepted_per_s']:,.0f} fixes/s beside 1 worker and {m2['accepted_per_s']:,.0f}"
        f" beside 2: {m1['accepted_per_s'] / m1['applied_per_s']:.0f}× what the workers apply,"
        " so every run ends with a backlog that the workers drain after the load.",
        ("- **One worker is not CPU-bound**" if idle1 else "- **One worker**")
        + ": draining alone it uses"
        f" {cores(r1, 'cpu_draining', 'worker'):.2f} core, PostgreSQL"
        f" {pgc(r1, 'cpu_draining'):.2f}, the machine {cores(r1, 'cpu_draining', busy):.2f} of"
        f" {n}, {per_cmd[0]:.1f} ms of it per command ({r1['fixes_per_command']:.0f} fixes: a"
        " 500-fix batch is cut into one command per partition). A partition's fetched commands"
        " are applied as runs, one transaction a run (group commit, up to 2,048 fixes):"
        f" {r1['transactions_per_command']:.2f} database transactions per command, heartbeats"
        " and pool resets included. `PresenceUnitOfWork.transact`"
        " (adapters/services/unit_of_work.py) still holds the process's one presence lock"
        " across a run's transaction, so the worker's 16 partition consumers take turns: one"
        " process applies at most one run per transaction latency.",
        ("- **What caps 2 workers**" if ratio < 1.5 else "- **2 workers**")
        + ": a second process doubles the transactions in flight"
        f" ({per_cmd[1]:.1f} ms per command in each worker while draining, {per_cmd[0]:.1f}"
        " with one)"
        + (f", and then the {n} cores are full" if full2 else "")
        + ": while loading the machine is busy"
        f" {cores(r2, 'cpu_loading', busy):.2f} of {n} cores (API"
        f" {cores(r2, 'cpu_loading', 'api'):.2f}, workers"
        f" {cores(r2, 'cpu_loading', 'worker'):.2f}, PostgreSQL {pgc(r2, 'cpu_loading'):.2f},"
        f" NATS {cores(r2, 'cpu_loading', 'nats-server'):.2f}, loader"
        f" {cores(r2, 'cpu_loading', 'loader (this script)'):.2f}, other processes"
        f" {cores(r2, 'cpu_loading', 'other processes'):.2f}) and the workers spend"
        f" {r2['cpu_loading'].get('worker', {}).get('runqueue') or 0:.2f} s per s ready but"
        f" waiting for a CPU; draining, {cores(r2, 'cpu_draining', busy):.2f} cores (workers"
        f" {cores(r2, 'cpu_draining', 'worker'):.2f}, PostgreSQL {pgc(r2, 'cpu_draining'):.2f},"
        f" other processes {cores(r2, 'cpu_draining', 'other processes'):.2f}). Per 1,000"
        " fixes applied the workers spend"
        f" {(r2['cpu_ms_per_1000_fixes_draining'] or {}).get('worker', 0):.0f} ms of CPU and"
        " PostgreSQL"
        f" {sum((r2['cpu_ms_per_1000_fixes_draining'] or {}).get(x, 0) for x in pg):.0f} ms:"
        + (
            " the shared resource is the machine's CPU, split between the API, the workers"
            " and PostgreSQL (NATS is cheap)"
            + (
                f" — and other jobs of this machine took"
                f" {cores(r2, 'cpu_loading', 'other processes'):.2f} cores of it."
                if cores(r2, "cpu_loading", "other processes") >= 0.25
                else "."
            )
            if full2
            else " the machine still had CPU to spare."
        )
        + (
            f" A third worker would find no CPU on these {n} cores: past 2 workers the"
            " cluster grows with machines, or with cheaper commands."
            if full2 and ratio >= 1.5
            else ""
        ),
    ]
    prof = doc.get("profile", {}).get("summary", {})
    if "worker" in prof:
        w = prof["worker"]["by_library"]
        eng = w.get(ENGINE, 0) + w.get(ADAPTERS, 0)
        out.append(
            "- **Profile** (py-spy, 2 workers, during the load): the worker's samples are"
            f" {w.get('socket send syscalls', 0):.0%} in socket sends (each statement to"
            " PostgreSQL; the write that wakes a PostgreSQL backend is where"
            " a sender is preempted when the machine is full),"
            f" {w.get(EPOLL, 0):.0%} in epoll waits (for PostgreSQL's answers), and"
            f" {eng:.0%} in the engine's own code"
            + (
                ": the presence computation is not what costs; the round trips of one"
                " transaction per command are."
                if eng < 0.3
                else "."
            )
            + (
                f" The API spends {prof['api']['by_library'].get('socket send syscalls', 0):.0%}"
                " in socket sends (16 publishes per batch and the response) and"
                f" {prof['api']['by_library'].get(ADAPTERS, 0):.0%} in the"
                " engine's adapters (decoding the batch, its partition per row)"
                + (
                    f", and {prof['api']['by_library'].get(THREADS, 0):.0%} in thread hand-offs:"
                    " the `services` dependency (adapters/api/deps.py) is a plain `def`, which"
                    " FastAPI runs in its thread pool on every request."
                    if prof["api"]["by_library"].get(THREADS, 0) >= 0.03
                    else "."
                )
                if "api" in prof
                else ""
            )
        )
    out.append(
        "- **What would make commands cheaper** (engine code): the owner's per-fix Python"
        " (cursors as objects in a dict, looked up per customer and upserted every run; README"
        " \"Benchmarks\", issue 14's notes), and letting a worker's partitions commit"
        " concurrently (the undo log of `begin/commit/rollback` in geo_engine/presence_state.py"
        " is one per process, hence the one lock; the partitions' customers are disjoint, so it"
        " could be one per partition)."
    )
    k = doc["takeover"].get("median")
    if k:
        out.append(
            f"- **Takeover** after kill -9: the survivor owns every partition after"
            f" {k['owned_by_survivor_s']:.1f} s (the {LEASE_TTL_S:g} s lease ttl, then its next"
            f" {HEARTBEAT_S:g} s heartbeat), has applied what the log held by then after"
            f" {k['caught_up_s']:.1f} s, and /v1/cluster shows every lag 0 after"
            f" {k['all_lags_0_s']:.1f} s (a lag is written by the owner's heartbeat). The"
            " ttl is what a takeover costs: GEO_ENGINE_LEASE_TTL_S trades it against false"
            " takeovers of a slow worker."
        )
    s = [x for x in doc["simulation"] if "error" not in x]
    for x in doc["simulation"]:
        if "error" in x:
            out.append(
                f"- **Simulation: {x['event']} never reached a fair share in"
                f" {x['within_s']:.0f} s** with {x['workers']} workers:"
                " see the timeline and the workers' logs under the table."
            )
    if s:
        joins = [x for x in s if "joins" in x["event"]]
        extra = sum(x["moved"] - x["minimum_moves"] for x in joins)
        out.append(
            f"- **{len(joins)} workers, {doc['args']['sim_partitions']} partitions**: joining one"
            f" by one moved {sum(x['moved'] for x in joins)} partitions in all ({extra:+d}"
            " against the minimum: a joiner takes only its share, the others give up only their"
            " surplus); each join was balanced within"
            f" {max(x['to_full_ownership_s'] for x in joins):.1f} s (the owners give up their"
            " surplus at their next heartbeat, once those partitions' consumers have stopped;"
            " the joiner takes it at its next, then reloads its memory from storage). "
            + " ".join(
                f"{x['event']}: {x['moved']} moved (minimum {x['minimum_moves']}), full"
                f" ownership after {x['to_full_ownership_s']:.1f} s."
                for x in s
                if "joins" not in x["event"]
            )
        )
    return out


# -- main ---------------------------------------------------------------------------------
