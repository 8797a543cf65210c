"""The soak's figures and its Markdown (scripts/soak.py measures; this summarises and renders).

Raw records, times in seconds from the load's start: batches [i, scheduled at, latency ms from
the scheduled time, HTTP status or error name, fixes accepted, fixes rejected, ms the loader sent
it late (included in the latency)]; rss [t, {engine process: kB}]; polls of /v1/cluster [t,
messages in the stream, Σ lag, max lag, partitions owned, ms it took]; infra_mem [t, {component:
kB}]; cpu [minute, {component: {cores, runqueue}}]; customers [t, customers with presence
state, customers with a profile] in the serving process."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

BATCH = 500
MB = 1024.0


def pct(x: list[float], q: float) -> float | None:
    return float(np.percentile(x, q)) if x else None


def lat_stats(rows: list[list[Any]]) -> dict[str, Any]:
    lat = [b[2] for b in rows]
    p50, p99 = pct(lat, 50), pct(lat, 99)
    return {
        "batches": len(rows),
        "errors": sum(b[3] != 202 for b in rows),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max(lat) if lat else None,
        "p99_over_p50": p99 / p50 if p50 and p99 else None,
        "loader_late_max_ms": max((b[6] for b in rows), default=None),
    }


def slope_of(pts: list[tuple[float, float]]) -> float | None:
    """MB per minute of a least-squares line through (seconds, MB)."""
    if len(pts) < 10:
        return None
    return float(np.polyfit([t / 60 for t, _ in pts], [m for _, m in pts], 1)[0])


def state_flat_from(customers: list[list[Any]], end: float, per_min: float = 0.01) -> float | None:
    """The first sample from which the customers held (presence + profile) grow by at most
    `per_min` of their count a minute until the end: from then on, memory that still grows is
    not new customers' state. None when they never settle within the run."""
    held = [(t, p + q) for t, p, q in customers if t <= end]
    if not held:
        return None
    t_end, n_end = held[-1]
    for t, n in held[:-1]:
        if n and (n_end - n) <= per_min * n * (t_end - t) / 60:
            return float(t)
    return None


def at_or_before(series: list[list[Any]], t: float) -> list[Any] | None:
    before = [s for s in series if s[0] <= t]
    return before[-1] if before else (series[0] if series else None)


def applied(poll: list[Any]) -> float:
    """Messages applied by their owners: each batch is one message per partition, published in
    turn, so partition p applied about applied_seq[p] / partitions of them: Σ/P = the mean.
    (Σ lag is what the owners last reported: stale while they are busy, not used for this.)"""
    return float(poll[6])


def behind_s(polls: list[list[Any]], k: int) -> float:
    """How long ago the oldest partition's applied message was published: the stream's length
    at each poll says when each sequence was reached."""
    t, done = float(polls[k][0]), polls[k][7]
    seen = polls[: k + 1]
    return max(0.0, t - float(np.interp(done, [p[1] for p in seen], [p[0] for p in seen])))


def rate_ratio(polls: list[list[Any]], a: float, b: float) -> float | None:
    """Messages applied / messages published between the polls at or before a and b."""
    pa, pb = at_or_before(polls, a), at_or_before(polls, b)
    if pa is None or pb is None or pb[1] <= pa[1]:
        return None
    return (applied(pb) - applied(pa)) / float(pb[1] - pa[1])


def spans(
    raw: dict[str, Any], width: float, end: float, fixes_per_msg: float
) -> list[dict[str, Any]]:
    out = []
    for k in range(math.ceil(end / width)):
        a, b = k * width, min((k + 1) * width, end)
        if b - a < width / 2 and k:
            continue  # a sliver at the end: its figures would say nothing
        rows = [x for x in raw["batches"] if a <= x[1] < b]
        rss = at_or_before(raw["rss"], b)
        mem = at_or_before(raw["infra_mem"], b)
        polls = [p for p in raw["polls"] if a <= p[0] < b]
        behind = [behind_s(raw["polls"], raw["polls"].index(p)) for p in polls]
        pa, pb = at_or_before(raw["polls"], a), at_or_before(raw["polls"], b)
        applied_s = None
        if pa is not None and pb is not None and pb[0] > pa[0]:
            applied_s = (applied(pb) - applied(pa)) * fixes_per_msg / (pb[0] - pa[0])
        out.append(
            {
                "from_s": a,
                **lat_stats(rows),
                "offered_per_s": sum(x[4] for x in rows) / (b - a),
                "applied_per_s": applied_s,
                "engine_rss_mb": sum(rss[1].values()) / MB if rss else None,
                "profiles": (c[2] if (c := at_or_before(raw.get("customers", []), b)) else None),
                "infra_mb": {k: v / MB for k, v in mem[1].items()} if mem else None,
                "lag_sum_max": max((p[2] for p in polls), default=None),
                "lag_partition_max": max((p[3] for p in polls), default=None),
                "cluster_get_ms_max": max((p[5] for p in polls), default=None),
                "behind_s_max": max(behind, default=None),
            }
        )
    return out


def summarise(raw: dict[str, Any], window_s: float) -> dict[str, Any]:
    a = raw["args"]
    batches = sorted(raw["batches"])
    raw["batches"] = batches
    end = raw.get("load_end_s") or (batches[-1][1] if batches else 0.0)
    accepted = sum(b[4] for b in batches)
    polls = raw["polls"]
    msgs = polls[-1][1] if polls else 0
    fixes_per_msg = accepted / msgs if msgs else 0.0
    # every customer seen: the first sweep answered, then applied by the owners
    lanes = a["customers"] // BATCH
    first = [b for b in batches if b[0] < lanes]
    swept = max((b[1] + b[2] / 1000 for b in first), default=None) if len(first) == lanes else None
    seen = None
    if swept is not None and (p0 := next((p for p in polls if p[0] >= swept), None)):
        seen = next((p[0] for p in polls if p[0] >= p0[0] and applied(p) >= p0[1]), None)
    # memory: the engine's total after everyone was seen, over the second half of the run
    # and every customer's state made: a profile starts at a first visit, which for most
    # customers comes minutes after their first fix (the walkers leave a store now and then)
    customers = raw.get("customers", [])
    flat_from = state_flat_from(customers, end)
    since = max(seen or swept or 0.0, end / 2, flat_from or 0.0)
    tail = [(t, sum(v.values()) / MB) for t, v in raw["rss"] if since <= t <= end]
    judged = flat_from is not None and end - since >= 120  # a slope needs minutes
    slope = slope_of(tail) if judged or not customers else None
    half = slope_of([(t, sum(v.values()) / MB) for t, v in raw["rss"] if end / 2 <= t <= end])
    c_half, c_end = at_or_before(customers, end / 2), at_or_before(customers, end)
    new_profiles = c_end[2] - c_half[2] if c_half and c_end else None
    r_half, r_end = at_or_before(raw["rss"], end / 2), at_or_before(raw["rss"], end)
    per_profile = None
    if new_profiles and r_half and r_end:  # what each new profile added, second half
        per_profile = (sum(r_end[1].values()) - sum(r_half[1].values())) * 1024 / new_profiles
    at_seen = at_or_before(raw["rss"], seen if seen is not None else since)
    last = at_or_before(raw["rss"], end)
    per_proc = {}
    for name in last[1] if last else {}:
        pts = [(t, v[name] / MB) for t, v in raw["rss"] if since <= t <= end and name in v]
        per_proc[name] = {
            "rss_at_seen_mb": at_seen[1].get(name, 0) / MB if at_seen else None,
            "rss_end_mb": last[1][name] / MB if last else None,
            "slope_mb_per_min": slope_of(pts),
        }
    overall = lat_stats(batches)
    steady = lat_stats([b for b in batches if b[1] >= (seen or swept or 0.0)])
    keep_up = rate_ratio(polls, end / 2, end)
    p_end = at_or_before(polls, end)
    rejected = sum(b[5] for b in batches)
    verdicts = {
        "p99_within_3x_p50": bool(overall["p99_over_p50"] and overall["p99_over_p50"] <= 3),
        "no_error": overall["errors"] == 0 and not raw.get("timed_out"),
        # None: not judged (the customers' state still grew until the end)
        "memory_flat": None if slope is None else abs(slope) <= a["flat"],
        "owners_keep_up": keep_up is not None and keep_up >= 0.95,
    }
    return {
        "command": raw["command"],
        "args": a,
        "machine": raw.get("machine"),
        "setup": raw["setup"],
        "window_s": window_s,
        "load_s": end,
        "timed_out": bool(raw.get("timed_out")),
        "offered_fixes_per_s": accepted / end if end else None,
        "accepted_fixes": accepted,
        "rejected_fixes": rejected,
        "fixes_per_log_message": fixes_per_msg,
        "latency_ms": overall,
        "latency_ms_after_all_seen": steady,
        "first_sweep_answered_s": swept,
        "all_customers_applied_s": seen,
        "memory": {
            "fit_from_s": since,
            "customers_state_flat_from_s": flat_from,
            "customers_with_profile_at_half": c_half[2] if c_half else None,
            "customers_with_profile_end": c_end[2] if c_end else None,
            "customers_with_presence_end": c_end[1] if c_end else None,
            "new_profiles_per_min_second_half": (
                new_profiles / (end / 2 / 60) if new_profiles is not None and end else None
            ),
            "rss_bytes_per_new_profile_second_half": per_profile,
            "engine_rss_slope_mb_per_min": slope,
            "engine_rss_slope_second_half_mb_per_min": half,
            "engine_rss_at_all_seen_mb": sum(at_seen[1].values()) / MB if at_seen else None,
            "engine_rss_end_mb": sum(last[1].values()) / MB if last else None,
            "engine_rss_start_mb": sum(raw["rss"][0][1].values()) / MB if raw["rss"] else None,
            "per_process": per_proc,
        },
        "applied_over_published_second_half": keep_up,
        "lag_at_load_end": p_end[2] if p_end else None,
        "behind_at_load_end_s": behind_s(polls, polls.index(p_end)) if p_end else None,
        "lag_0_after_load_s": raw.get("drain_s"),
        "engine_alive_at_end": raw.get("engine_alive_at_end"),
        "gc_full": raw.get("gc_full"),
        "engine_log_errors": raw.get("engine_log_errors", []),
        "verdicts": verdicts,
        "minutes": spans(raw, 60.0, end, fixes_per_msg),
        "windows": spans(raw, window_s, end, fixes_per_msg),
        "cpu_per_minute": raw["cpu"],
        "raw": {k: raw[k] for k in ("polls", "infra_mem")}
        | {
            "rss_mb": [
                [t, round(sum(v.values()) / MB, 1), {k: round(x / MB, 1) for k, x in v.items()}]
                for t, v in raw["rss"]
            ]
        }
        | {"batches": [b[1:4] for b in batches]},
    }


def to_json(doc: dict[str, Any]) -> str:
    """Indented, but the raw series one row a line (not one number a line)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "raw"}, indent=1)[:-2]
    series = [
        f'  "{k}": [\n' + ",\n".join("   " + json.dumps(r, separators=(",", ":")) for r in rows)
        for k, rows in doc["raw"].items()
    ]
    return head + ',\n "raw": {\n' + "\n  ],\n".join(series) + "\n  ]\n }\n}\n"


def f(x: float | None, fmt: str = ",.0f", none: str = "–") -> str:
    return none if x is None else format(x, fmt)


def table(rows: list[dict[str, Any]], unit: str, width: float) -> str:
    head = (
        f"| {unit} | batches | errors | p50 ms | p99 ms | p99/p50 | max ms | offered fixes/s"
        " | applied fixes/s | engine RSS MB | customers with a profile | PostgreSQL PSS MB"
        " | NATS RSS MB"
        " | max Σ lag (reported) | owners behind, max s | loader late, max ms"
        " | GET /v1/cluster, max ms |\n|" + "---|" * 17 + "\n"
    )

    def label(t: float) -> str:
        return f"{t / 60 + 1:g}" if unit == "minute" else f"{t:g}–{t + width:g} s"

    lines = []
    for r in rows:
        infra = r["infra_mb"] or {}
        lines.append(
            f"| {label(r['from_s'])} | {r['batches']} | {r['errors']} | {f(r['p50_ms'], '.1f')}"
            f" | {f(r['p99_ms'], '.1f')} | {f(r['p99_over_p50'], '.2f')} | {f(r['max_ms'])}"
            f" | {f(r['offered_per_s'])} | {f(r['applied_per_s'])} | {f(r['engine_rss_mb'])}"
            f" | {f(r.get('profiles'))}"
            f" | {f(infra.get('postgresql (PSS)'))} | {f(infra.get('nats-server'))}"
            f" | {f(r['lag_sum_max'])} | {f(r['behind_s_max'], '.1f')}"
            f" | {f(r['loader_late_max_ms'], '.1f')} | {f(r['cluster_get_ms_max'])} |"
        )
    return head + "\n".join(lines) + "\n"


def memory_figure(mem: dict[str, Any]) -> str:
    rss = (
        f"RSS {f(mem['engine_rss_start_mb'])} MB at start → {f(mem['engine_rss_at_all_seen_mb'])}"
        f" MB all applied → {f(mem['engine_rss_end_mb'])} MB at the end"
    )
    profiles = (
        f"customers with a profile {f(mem.get('customers_with_profile_at_half'))} at half time →"
        f" {f(mem.get('customers_with_profile_end'))} at the end"
        f" ({f(mem.get('new_profiles_per_min_second_half'))} new a minute, each"
        f" {f(mem.get('rss_bytes_per_new_profile_second_half'))} B of RSS)"
    )
    if mem["engine_rss_slope_mb_per_min"] is None:
        return (
            f"the customers' state still grew until the end: {profiles}; RSS"
            f" {f(mem['engine_rss_slope_second_half_mb_per_min'], '+.2f')} MB/min over the second"
            f" half; {rss}"
        )
    return (
        f"{f(mem['engine_rss_slope_mb_per_min'], '+.2f')} MB/min from {mem['fit_from_s']:.0f} s;"
        f" {rss}; {profiles}"
    )


def render(d: dict[str, Any]) -> str:
    m, a, mem, lat, v = d["machine"], d["args"], d["memory"], d["latency_ms"], d["verdicts"]
    ok = {True: "**yes**", False: "**NO**", None: "not judged"}
    names = sorted({k for _, c in d["cpu_per_minute"] for k in c} - {"machine (all processes)"})
    cpu = f"| minute | {' | '.join(names)} | machine |\n|" + "---|" * (len(names) + 2) + "\n"
    for minute, c in d["cpu_per_minute"]:
        cores = [
            f((c.get(k) or {}).get("cores"), ".2f") for k in [*names, "machine (all processes)"]
        ]
        cpu += f"| {minute + 1} | {' | '.join(cores)} |\n"
    procs = "".join(
        f"| {k} | {f(p['rss_at_seen_mb'])} | {f(p['rss_end_mb'])}"
        f" | {f(p['slope_mb_per_min'], '+.2f')} |\n"
        for k, p in mem["per_process"].items()
    )
    after = d["latency_ms_after_all_seen"]
    rows = [
        (
            "p99 ≤ 3 × p50 (every batch of the run)",
            f"p50 {f(lat['p50_ms'], '.1f')} ms, p99 {f(lat['p99_ms'], '.1f')} ms:"
            f" × {f(lat['p99_over_p50'], '.2f')} (after all seen: p50 {f(after['p50_ms'], '.1f')},"
            f" p99 {f(after['p99_ms'], '.1f')} ms)",
            v["p99_within_3x_p50"],
        ),
        (
            "no error",
            f"{lat['errors']} failed requests of {lat['batches']:,};"
            f" {d['rejected_fixes']:,} fixes rejected",
            v["no_error"],
        ),
        (
            f"engine memory flat once every customer is applied and the customers' state no"
            f" longer grows (\\|slope\\| ≤ {a['flat']:g} MB/min)",
            memory_figure(mem),
            v["memory_flat"],
        ),
        (
            "owners keep up (applied ≥ 0.95 × published over the second half)",
            f"× {f(d['applied_over_published_second_half'], '.3f')}; at the load's end the"
            f" owners were {f(d['behind_at_load_end_s'], '.1f')} s behind (Σ lag reported"
            f" {f(d['lag_at_load_end'])} messages); the whole log applied"
            f" {f(d['lag_0_after_load_s'], '.1f', 'not within --drain')} s after",
            v["owners_keep_up"],
        ),
    ]
    verdicts = "| criterion | figure | met |\n|---|---|---|\n" + "".join(
        f"| {c} | {x} | {ok[y]} |\n" for c, x, y in rows
    )
    verdicts += (
        f"\nOffered {f(d['offered_fixes_per_s'])} fixes/s ({d['accepted_fixes']:,} accepted;"
        f" {d['fixes_per_log_message']:.1f} fixes per log message). First sweep answered at"
        f" {f(d['first_sweep_answered_s'])} s, applied by the owners at"
        f" {f(d['all_customers_applied_s'])} s.\n"
    )
    if gc := d.get("gc_full"):
        verdicts += (
            f"Scheduled full garbage collections in the serving process: {gc['count']},"
            f" {gc['sum_s']:.2f} s in all, each at most {f(gc['at_most_s'], 'g')} s (histogram"
            " bound).\n"
        )
    timed_out = " (**hard timeout hit**)" if d["timed_out"] else ""
    errs = "\n".join(f"    {x}" for x in d["engine_log_errors"][:10]) or "    (none)"
    return f"""# Soak

Machine: {m["cpu"]}, {m["cores"]} cores, {m["memory_gb"]} GB, {m["os"]}, Python {m["python"]};
PostgreSQL {m["postgresql"]}, nats-server {m["nats_server"]} ({m["database"]}). Commit {m["commit"]}
(uncommitted: {", ".join(m["uncommitted_files"]) or "none"}), {m["date"]}.

Command: `{d["command"]}`

Engine: {d["setup"]}, 16 partitions, raw fixes stored; {a["fences"]} store fences in Paris.
{a["customers"]:,} customers swept in order (each one fix every {a["customers"] / a["rate"]:g} s),
500-fix batches at {a["rate"]:,.0f} fixes/s on a fixed schedule over {a["connections"]} connections,
without `?wait` (202 once durable in the log); latency from each batch's scheduled send time.
{d["load_s"]:.0f} s of load{timed_out}. Other jobs may share the machine: the CPU per minute below
says how much they took.

## Verdicts

{verdicts}
## Per minute

{table(d["minutes"], "minute", 60.0)}
Applied fixes/s = messages applied × fixes per message (`GET /v1/cluster` every 5 s); messages
applied = the mean of the partitions' applied sequences (each batch is one message per
partition, in turn); owners behind = now − when the least advanced partition's
applied message was published; Σ lag as the owners last reported it (stale while they are busy).
RSS = VmRSS of each `serve` process and its children; PostgreSQL = PSS of its server processes
and this database's backends.

## Engine memory per process (MB)

| process | all customers applied | end | slope MB/min (fit) |
|---|---|---|---|
{procs}
## CPU per minute (cores; 2 = the whole machine)

{cpu}
## Per {d["window_s"]:g} s window

{table(d["windows"], "window", d["window_s"])}
Engine log lines with ERROR or a traceback: {len(d["engine_log_errors"])}

{errs}
"""
