"""Decision latency in process, pure core (no database): one presence event against 100 live
campaigns, p50/p99 over many events after a warm-up. Two figures:
  - `decide` alone (facts, pressure and suppression already read);
  - the whole in-process path the hook runs per event: customer + profile facts from the
    assembled profile, context facts (local time in the fence's zone), pressure counting from the
    customer's week of offers, and `decide`. (Reading the profile itself, ~85 µs, is measured by
    bench_profile.py; the hook's three PostgreSQL reads are not in this figure.)
Worst case by design: every campaign listens to the same trigger (store enter), each with a
3-leaf condition, so all 100 are evaluated and ranked on every event.
Writes bench/decision.json and bench/decision.md.

    python scripts/bench_decision.py [--campaigns 100] [--events 20000]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo_engine.decision.backtest import backtest  # noqa: E402
from geo_engine.decision.book import Book  # noqa: E402
from geo_engine.decision.decide import decide  # noqa: E402
from geo_engine.decision.facts import (  # noqa: E402
    Customer,
    TriggerEvent,
    context_facts,
    customer_of,
    profile_facts,
)
from geo_engine.decision.models import parse_campaign, parse_offer  # noqa: E402
from geo_engine.decision.rules import DecisionConfig, Pressure, Sent, pressure_of  # noqa: E402
from geo_engine.profile.attributes import (  # noqa: E402
    Attributes,
    Consent,
    ConsentPurpose,
    ConsentStatus,
)
from geo_engine.profile.config import ProfileConfig  # noqa: E402
from geo_engine.profile.profile import build_profile  # noqa: E402
from geo_engine.profile.state import ProfileState  # noqa: E402

Inputs = tuple[Customer, dict[str, object], Pressure]
SEGMENTS = ["champions", "loyal", "potential_loyalists", "at_risk", "prospect", "new"]


FENCES = [f"store{i}" for i in range(20)]
EVENTS = ["enter", "dwell", "exit"]


def build_book(n: int, now: float, rng: random.Random, spread: bool) -> Book:
    offers = {}
    for i in range(n // 2):
        o = parse_offer(
            {
                "id": f"o{i}",
                "content": {
                    "sms": {"text": "Bonjour {first_name}, -10% chez {store_name}. STOP 36180"},
                    "push": {"title": "-10%", "body": "{store_name}", "deep_link": None},
                },
                "valid_from": now - 86400,
                "valid_until": now + 86400 * 30,
                "value": rng.uniform(1, 50),
                "category": rng.choice(["shoes", "bags", "food", "kids"]),
            }
        )
        offers[o.id] = o
    campaigns = []
    for i in range(n):
        doc: dict[str, Any] = {
            "id": f"c{i:03d}",
            "status": "live",
            "start": now - 86400,
            "end": now + 86400 * 30,
            "priority": rng.randint(0, 3),
            "triggers": [
                {"type": "presence", "event": rng.choice(EVENTS), "fence_ids": [rng.choice(FENCES)]}
                if spread
                else {"type": "presence", "event": "enter", "fence_kinds": ["store"]}
            ],
            "conditions": {
                "all": [
                    {"field": "profile.segment", "op": "in", "value": rng.sample(SEGMENTS, 3)},
                    {"field": "context.local_hour", "op": "between", "value": [8, 21]},
                    {
                        "any": [
                            {"field": "profile.affinity.shoes", "op": "gte", "value": 0.2},
                            {"field": "context.day_of_week", "op": "ne", "value": "sun"},
                        ]
                    },
                ]
            },
            "offer_ids": [f"o{rng.randrange(n // 2)}", f"o{rng.randrange(n // 2)}"],
            "channels": ["push", "sms"],
            "control_pct": 10.0,
            "cooldown_s": 86400.0,
        }
        campaigns.append(parse_campaign(doc, offers))
    return Book(campaigns, offers)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=100)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backtest-events", type=int, default=200_000)
    ap.add_argument(
        "--profile",
        metavar="FILE",
        help="instead of timing: the top functions by own time (cProfile), decide and path",
    )
    args = ap.parse_args()
    if args.profile:
        Path(args.profile).write_text(profile_table(args))
        print(Path(args.profile).read_text())
        return
    runs = []
    for spread in (False, True):
        for r in range(args.runs):
            runs.append(one_run(args, spread, seed=7 + r))
    report(args, runs, backtest_rate(args.backtest_events))


def backtest_rate(n: int) -> float:
    """Pure replay of `n` store enters (1,000 customers, a minute apart) through one campaign
    of the worst-case catalogue: events/s, subject built from the profile for each event."""
    rng = random.Random(1)
    now = 1_795_518_000.0
    full = build_book(100, now, rng, spread=False)
    c = next(iter(full.campaigns.values()))
    book = Book([c], full.offers)
    st = ProfileState(ProfileConfig(), ref=now)
    granted = Consent(ConsentStatus.GRANTED, now - 86400, "app")
    for k in range(1000):
        st.attributes[f"cust{k}"] = Attributes(first_name="Léa")
        st.consents[f"cust{k}"] = {ConsentPurpose.PUSH: granted}
    profiles = {f"cust{k}": build_profile(st, f"cust{k}", now) for k in range(1000)}
    cfg = DecisionConfig()

    def subject(ev: TriggerEvent) -> tuple[Customer, dict[str, object]]:
        p = profiles[ev.customer_id]
        assert p is not None
        facts = profile_facts(p)
        facts.update(context_facts(ev, cfg.default_timezone))
        return customer_of(p), facts

    events = [
        TriggerEvent(
            "presence",
            "enter",
            f"cust{k % 1000}",
            now + 60 * k,
            f"pe:{k}",
            fence_id="opera",
            fence_kind="store",
            store_id="opera",
            timezone="Europe/Paris",
        )
        for k in range(n)
    ]
    t0 = time.perf_counter()
    backtest(events, book, c.id, subject, lambda _: frozenset(), cfg)
    return n / (time.perf_counter() - t0)


def setup(
    args: argparse.Namespace, spread: bool, seed: int
) -> tuple[Book, DecisionConfig, list[TriggerEvent], Callable[[int, TriggerEvent], Inputs]]:
    """The book, the config, the events and what the hook reads per event (`inputs_of`)."""
    rng = random.Random(seed)
    now = 1_795_518_000.0  # a Tuesday, 11:00 Paris
    book = build_book(args.campaigns, now, rng, spread)
    cfg = DecisionConfig()
    st = ProfileState(ProfileConfig(), ref=now)
    n_customers = 1000
    granted = Consent(ConsentStatus.GRANTED, now - 86400, "app")
    for k in range(n_customers):
        cid = f"cust{k}"
        st.attributes[cid] = Attributes(first_name="Léa", age_band="25-34")
        st.consents[cid] = {ConsentPurpose.PUSH: granted, ConsentPurpose.SMS: granted}
    profiles = [build_profile(st, f"cust{k}", now) for k in range(n_customers)]
    histories = [
        [Sent(now - rng.uniform(0, 7 * 86400), "push", f"c{rng.randrange(100):03d}")]
        * rng.randint(0, 2)
        for _ in range(n_customers)
    ]
    events = [
        TriggerEvent(
            "presence",
            rng.choice(EVENTS) if spread else "enter",
            f"cust{k % n_customers}",
            now + k,
            f"pe:{k}",
            fence_id=rng.choice(FENCES) if spread else "opera",
            fence_kind="store",
            store_id="opera",
            timezone="Europe/Paris",
            source="gps",
        )
        for k in range(args.events)
    ]

    def inputs_of(k: int, ev: TriggerEvent) -> Inputs:
        """What the hook reads per event: customer and facts from the profile, pressure."""
        p = profiles[k % n_customers]
        assert p is not None
        facts = profile_facts(p)
        facts.update(context_facts(ev, cfg.default_timezone))
        return customer_of(p), facts, pressure_of(histories[k % n_customers], ev.ts)

    return book, cfg, events, inputs_of


def profile_table(args: argparse.Namespace, top: int = 14) -> str:
    """Own time per function under cProfile, both catalogues, `decide` alone then the whole
    path, after a warm-up round. cProfile adds a fixed cost per call, so functions called often
    look heavier than they are: read the ranks and the call counts, not the µs."""
    out = [
        f"`python scripts/bench_decision.py --profile FILE --events {args.events}` "
        f"({args.campaigns} campaigns; cProfile, own time; µs/event include its overhead)",
        "",
    ]
    for spread in (False, True):
        case = "spread" if spread else "worst"
        for name, fn in _profiled(args, spread):
            fn()  # warm-up: zones, holidays, caches
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            st = pstats.Stats(prof)
            rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
            total = sum(v[2] for _, v in rows)
            out.append(f"{case}, {name}: {total / args.events * 1e6:.1f} µs/event under cProfile")
            out.append("")
            out.append("| own % | µs/event | calls/event | function |")
            out.append("|---:|---:|---:|---|")
            for (file, line, fname), (_cc, nc, tt, _ct, _callers) in rows[:top]:
                where = f"{Path(file).name}:{line}" if line else "builtin"
                out.append(
                    f"| {100 * tt / total:.1f} | {tt / args.events * 1e6:.2f} "
                    f"| {nc / args.events:.2f} | `{fname}` ({where}) |"
                )
            out.append("")
    return "\n".join(out)


def _profiled(args: argparse.Namespace, spread: bool) -> list[tuple[str, Callable[[], None]]]:
    """`decide` alone over prebuilt inputs, and the whole path per event."""
    book, cfg, events, inputs_of = setup(args, spread, seed=7)
    inputs = [(ev, *inputs_of(k, ev)) for k, ev in enumerate(events)]
    none: frozenset[str] = frozenset()

    def alone() -> None:
        for ev, cust, facts, pressure in inputs:
            decide(ev, cust, facts, book, pressure, none, cfg)

    def path() -> None:
        for k, ev in enumerate(events):
            cust, facts, pressure = inputs_of(k, ev)
            decide(ev, cust, facts, book, pressure, none, cfg)

    return [("decide", alone), ("path", path)]


def one_run(args: argparse.Namespace, spread: bool, seed: int) -> dict[str, Any]:
    book, cfg, events, inputs_of = setup(args, spread, seed)
    alone: list[float] = []
    path: list[float] = []
    outcomes: dict[str, int] = {}
    for rounds in range(2):  # the first round warms caches (zones, holidays) and is dropped
        alone.clear()
        path.clear()
        for k, ev in enumerate(events):
            t0 = time.perf_counter_ns()
            cust, facts, pressure = inputs_of(k, ev)
            t1 = time.perf_counter_ns()
            d = decide(ev, cust, facts, book, pressure, frozenset(), cfg)
            t2 = time.perf_counter_ns()
            alone.append((t2 - t1) / 1000)
            path.append((t2 - t0) / 1000)
            if rounds:
                outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1
    # the same events with the collector's long-lived generation frozen, as the service does
    # after loading the book (gc.freeze): wall time, then thread CPU time (which leaves out
    # the time other processes on this shared machine take the core: ~1.7 µs per read here)
    inputs = [(ev, *inputs_of(k, ev)) for k, ev in enumerate(events)]
    gc.collect()
    gc.freeze()
    frozen: list[float] = []
    cpu: list[float] = []
    for ev, cust, facts, pressure in inputs:
        t0 = time.perf_counter_ns()
        decide(ev, cust, facts, book, pressure, frozenset(), cfg)
        frozen.append((time.perf_counter_ns() - t0) / 1000)
    for ev, cust, facts, pressure in inputs:
        c0 = time.thread_time_ns()
        decide(ev, cust, facts, book, pressure, frozenset(), cfg)
        cpu.append((time.thread_time_ns() - c0) / 1000)
    path_frozen: list[float] = []
    for k, ev in enumerate(events):
        t0 = time.perf_counter_ns()
        cust, facts, pressure = inputs_of(k, ev)
        decide(ev, cust, facts, book, pressure, frozenset(), cfg)
        path_frozen.append((time.perf_counter_ns() - t0) / 1000)
    gc.unfreeze()
    return {
        "spread": spread,
        "decide_p50_us": round(statistics.median(alone), 1),
        "decide_p99_us": round(pct(alone, 0.99), 1),
        "frozen_p50_us": round(statistics.median(frozen), 1),
        "frozen_p99_us": round(pct(frozen, 0.99), 1),
        "cpu_p50_us": round(statistics.median(cpu), 1),
        "cpu_p99_us": round(pct(cpu, 0.99), 1),
        "path_p50_us": round(statistics.median(path), 1),
        "path_p99_us": round(pct(path, 0.99), 1),
        "pathfrozen_p50_us": round(statistics.median(path_frozen), 1),
        "pathfrozen_p99_us": round(pct(path_frozen, 0.99), 1),
        "outcomes": outcomes,
    }


def report(args: argparse.Namespace, runs: list[dict[str, Any]], bt_rate: float) -> None:
    machine = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    out = ROOT / "bench"
    out.mkdir(exist_ok=True)
    doc = {
        "campaigns": args.campaigns,
        "events": args.events,
        "runs": runs,
        "backtest_events_per_s": round(bt_rate),
        "machine": machine,
    }
    rows = []
    keys = ("decide", "frozen", "cpu", "path", "pathfrozen")
    for r in runs:
        case = "spread: 20 stores x 3 events" if r["spread"] else "worst: all on store enter"
        cells = " | ".join(f"{r[k + '_p50_us']} / {r[k + '_p99_us']}" for k in keys)
        rows.append(f"| {case} | {cells} | {json.dumps(r['outcomes'])} |")
    for spread in (False, True):
        mine = [r for r in runs if r["spread"] is spread]
        case = "**median, spread**" if spread else "**median, worst**"
        med = {
            f"{k}_{q}": round(statistics.median(r[f"{k}_{q}_us"] for r in mine), 1)
            for k in keys
            for q in ("p50", "p99")
        }
        doc["median_spread" if spread else "median_worst"] = med
        cells = " | ".join(f"**{med[k + '_p50']} / {med[k + '_p99']}**" for k in keys)
        rows.append(f"| {case} | {cells} | |")
    (out / "decision.json").write_text(json.dumps(doc, indent=2) + "\n")
    table = "\n".join(rows)
    md = f"""# Decision latency (in process, pure core)

`python scripts/bench_decision.py --campaigns {args.campaigns} --events {args.events} \
--runs {args.runs}`

{args.campaigns} live campaigns, each with a 3-leaf condition, 50 offers, 1,000 customers with
push + SMS consent and 0-2 offers in their week; {args.events} presence events per run, timed
in the second of two rounds (the first warms caches). Two catalogues:
- worst: every campaign listens to the same trigger (store enter), so all 100 fire each time;
- spread: each campaign listens to one of enter/dwell/exit at one of 20 stores (~2 fire).

Columns: `decide` alone (wall clock, default collector); the same with the long-lived objects
frozen (`gc.freeze()` after the book and profiles are loaded, as the server does once its start
has loaded them: adapters/api/app.py); the same in thread CPU time (leaves out the time other
processes take the core on this shared machine; each read costs ~1.7 µs here, included); the
in-process path (customer, facts, pressure, `decide`), with the default collector and frozen.
Medians of the runs in bold.

| catalogue | `decide` p50 / p99 (µs) | `decide`, gc frozen | `decide`, gc frozen, CPU time \
| facts + pressure + `decide` | the same, gc frozen | outcomes |
|---|---:|---:|---:|---:|---:|---|
{table}

Backtest, pure replay (`geo_engine/decision/backtest.py`, profile facts built per event, one
campaign, {args.backtest_events} store enters): {bt_rate:,.0f} events/s. The API route adds
reading the events from PostgreSQL: `geo-engine backtest c1 --since ... --until ...` over a
seeded week (20 stores, 2,000 customers, 420,000 presence + 70,414 search events, one campaign
on store enter + in-store search) read 490,414 events at ~18,500 events/s end to end (server-side
cursor, 5,000-row chunks; ~57 % of the time builds the customer's profile per event). Measured
separately on 2026-11-22, not by this script.

Before this change (prebuilt customer-wide traces per trigger shape, shared fixed traces,
unrolled conditions, memoised step strings and buckets), this script gave worst-catalogue p99
171-280 µs (commit 2b6885f). Interleaved A/B of the old and new code on these catalogues (inputs
prebuilt, 4 runs each, medians): worst p50 / p99 15.3 / 103 -> 13.1 / 27 µs; spread 13.9 / 27
-> 12.8 / 37 µs (noise at this level). Outcomes per run are identical before and after.

Issue 14 (profiles: bench/decision-profile-before.txt, -after.txt): the message rules in their
own module with the step strings and consent answers looked up, not built; each trigger shape
carries its campaigns' bounds, resolved offers and the lists of campaigns not reached; no
liveness check when the shape is all live; the customer a NamedTuple, its consents one shared
frozenset per combination; the local wall clock from a per-zone day span (local_clock.py), not a
zone conversion per event; fact names built once. On 2026-12-03, with the machine's two cores
shared with other work (load 3-8), interleaved runs of the old (e07f0b2) and new code, 3 each,
medians of their medians: worst `decide` 26.6 / 108 -> 25.3 / 104 µs (CPU time 24.7 / 78 ->
24.5 / 71), spread 21.8 / 126 -> 16.0 / 79 (CPU 21.4 / 78 -> 14.4 / 48); path worst 45.2 / 150
-> 43.2 / 144, spread 39.1 / 178 -> 28.5 / 123; backtest 34.9 k -> 61.5 k events/s. The p99 at
that load is the other processes' (a decision preempted once costs a time slice). Measures the
load leaves out: instructions per event (valgrind, 4,000 events, gc off) worst `decide` 86-89 k
-> 65-68 k, spread 50.5 k -> 41.2 k, path worst 158 k -> 121 k; the fastest of 5 passes per
event (gc frozen, interleaved), worst p50 / p99 17.6 / 32 -> 12.4 / 23 µs. Outcomes per run
are identical before and after.

Target: p99 ≤ 50 µs per presence event. Not included: the profile read (bench/profile.md)
and the hook's PostgreSQL reads and writes (history, suppression, usage; decision and outbox
rows), which run inside the presence commit.
Machine: {machine}, shared with other work while measured (p99 is sensitive to that).
"""
    (out / "decision.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
