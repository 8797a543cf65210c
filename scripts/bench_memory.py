"""Memory per active customer: what the engine keeps in memory for each customer it serves.

Per customer count N (each in a fresh child process, so one count's freed memory does not
flatter the next), the state a running engine holds is built through the core's own code:
  - presence: a cursor per customer (the last fix), and for the share of customers inside
    fences (25 %: a store; 1 in 5 of them also a department zone) their visit state and dwell
    deadline, loaded with `PresenceEngine.load` as the server does at start;
  - profile: a slot per customer in `ProfileState` (the count ring, RFM, channels, trends),
    attributes and three consents, and a week of behavioural events recorded with
    `plan`/`apply` (so the category affinities exist too);
  - the decision book (100 live campaigns, 50 offers): one per engine, not per customer, so
    reported as a fixed cost.
Measured twice: the process's resident memory (RSS, /proc/self/statm) before and after the
build without tracing, and the bytes Python and numpy allocate (tracemalloc) on a second build.

Each count is measured --runs times (fresh processes; the machine is shared, and RSS moves
with it) and the run of median traced total is reported, the others' figures kept beside it.

    python scripts/bench_memory.py [--customers 10000,100000] [--runs 3] [--out bench]

Writes <out>/memory.json and <out>/memory.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from machine_info import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

INSIDE_SHARE = 0.25  # of active customers, inside a store fence at the moment measured
ZONE_SHARE = 0.2  # of those, also inside a department zone
EVENTS_PER_CUSTOMER = 3
NOW = 1_795_518_000.0  # a Tuesday, 11:00 Paris


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def build_presence(n: int, rng: random.Random) -> Any:
    from geo_engine.models import CustomerCursor, FenceState
    from geo_engine.presence import PresenceEngine

    engine = PresenceEngine()
    cursors = (
        (f"c{i:07d}", CustomerCursor(NOW - rng.uniform(0, 3600), 48.86, 2.35, 12.0))
        for i in range(n)
    )
    states: list[tuple[str, str, FenceState]] = []
    for i in range(n):
        if rng.random() < INSIDE_SHARE:
            store = rng.randrange(1000)
            t_in = NOW - rng.uniform(0, 1800)
            states.append((f"c{i:07d}", f"store-{store:04d}", FenceState(t_in, NOW)))
            if rng.random() < ZONE_SHARE:
                states.append((f"c{i:07d}", f"zone-{store:04d}-a", FenceState(t_in + 60, NOW)))
    engine.load(cursors, states)
    return engine


def build_profiles(n: int, rng: random.Random) -> Any:
    from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus
    from geo_engine.profile.config import DAY_S, ProfileConfig
    from geo_engine.profile.events import BehaviouralEvent, Channel, EventType
    from geo_engine.profile.state import ProfileState

    state = ProfileState(ProfileConfig(), ref=NOW)
    granted = Consent(ConsentStatus.GRANTED, NOW - 30 * DAY_S, "app")
    types = (EventType.PAGE_VIEW, EventType.PRODUCT_VIEW, EventType.SEARCH, EventType.PURCHASE)
    cats = ("shoes", "bags", "garden", "tea", "kids", "sport", "beauty", "books")
    names = ("Camille", "Léa", "Hugo", "Louis", "Inès", "Jade")
    batch: list[BehaviouralEvent] = []
    for i in range(n):
        cid = f"c{i:07d}"
        state.slot(cid)
        attrs = Attributes(rng.choice(names), "25-34", None, str(rng.randint(1, 8)), 2, "75011")
        state.set_attributes(cid, attrs)
        consents = {p: granted for p in (ConsentPurpose.LOCATION, ConsentPurpose.PUSH)}
        consents[ConsentPurpose.SMS] = granted
        state.set_consents(cid, consents)
        for _ in range(EVENTS_PER_CUSTOMER):
            t = NOW - rng.uniform(0, 7 * DAY_S)
            cat = ((rng.choice(cats), 1.0),)
            batch.append(BehaviouralEvent(cid, rng.choice(types), t, Channel.APP, cat))
        if len(batch) >= 6000:
            state.apply(state.plan(batch, NOW))
            batch.clear()
    if batch:
        state.apply(state.plan(batch, NOW))
    return state


def build_book() -> Any:
    from bench_decision import build_book as book_of  # the decision benchmark's catalogue

    return book_of(100, NOW, random.Random(3), spread=True)


def measure(n: int) -> dict[str, Any]:
    """In this (fresh) process: RSS of an untraced build, then tracemalloc of a second one."""
    import geo_engine.presence  # imports are not customer state
    import geo_engine.profile.state  # noqa: F401

    build_book()  # imports the decision modules and warms their caches
    gc.collect()
    rss: dict[str, int] = {}
    t0 = time.perf_counter()
    r0 = _rss()
    engine = build_presence(n, random.Random(1))
    r1 = _rss()
    profiles = build_profiles(n, random.Random(2))
    r2 = _rss()
    rss = {"presence": r1 - r0, "profile": r2 - r1}
    build_s = time.perf_counter() - t0
    inside = sum(1 for i in range(n) if engine.is_inside_any(f"c{i:07d}"))
    capacity = profiles.ring.capacity
    del engine, profiles
    gc.collect()
    traced: dict[str, int] = {}
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    engine = build_presence(n, random.Random(1))
    gc.collect()
    traced["presence"] = tracemalloc.get_traced_memory()[0] - base
    base = tracemalloc.get_traced_memory()[0]
    profiles = build_profiles(n, random.Random(2))
    gc.collect()
    traced["profile"] = tracemalloc.get_traced_memory()[0] - base
    base = tracemalloc.get_traced_memory()[0]
    book = build_book()
    traced["book"] = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del engine, profiles, book
    return {
        "customers": n,
        "inside_any": inside,
        "profile_capacity": capacity,
        "events_recorded": n * EVENTS_PER_CUSTOMER,
        "build_s": round(build_s, 2),
        "rss_bytes": rss,
        "traced_bytes": traced,
        "rss_bytes_per_customer": round((rss["presence"] + rss["profile"]) / n),
        "traced_bytes_per_customer": {
            "presence": round(traced["presence"] / n),
            "profile": round(traced["profile"] / n),
            "total": round((traced["presence"] + traced["profile"]) / n),
        },
        "book_bytes": traced["book"],
    }


def write(rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    import numpy as np

    doc: dict[str, Any] = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "inside_share": INSIDE_SHARE,
        "zone_share": ZONE_SHARE,
        "events_per_customer": EVENTS_PER_CUSTOMER,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# Memory per active customer",
        "",
        f"Presence cursor for every customer, visit state for {INSIDE_SHARE:.0%} inside a store "
        f"({ZONE_SHARE:.0%} of them also in a zone), profile slot with attributes, 3 consents "
        f"and {EVENTS_PER_CUSTOMER} events of the past week; each count the median of "
        f"{len(rows[0].get('runs', [0]))} fresh processes. "
        f"{doc['machine']['cpu']}, Python {doc['machine']['python']}.",
        "",
        "| active customers | presence B | profile B | total B (tracemalloc) | RSS B | "
        "decision book (fixed) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["traced_bytes_per_customer"]
        lines.append(
            f"| {r['customers']:,} | {t['presence']:,} | {t['profile']:,} | {t['total']:,} | "
            f"{r['rss_bytes_per_customer']:,} | {r['book_bytes'] / 1e6:.2f} MB |"
        )
    (out / "memory.md").write_text("\n".join(lines) + "\n")
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", default="10000,100000", help="comma-separated counts")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per count (median)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(measure(a.child)))
        return
    rows = []
    for n in (int(x) for x in a.customers.split(",")):
        runs = []
        for _ in range(a.runs):
            cmd = [sys.executable, __file__, "--child", str(n)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"--child {n} failed:\n{done.stderr}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        runs.sort(key=lambda r: r["traced_bytes_per_customer"]["total"])
        row = runs[len(runs) // 2]
        row["runs"] = [
            {
                "traced_total": r["traced_bytes_per_customer"]["total"],
                "profile": r["traced_bytes_per_customer"]["profile"],
                "rss": r["rss_bytes_per_customer"],
            }
            for r in runs
        ]
        t = row["traced_bytes_per_customer"]
        print(
            f"{n:,} customers: {t['total']:,} B/customer traced "
            f"(presence {t['presence']:,}, profile {t['profile']:,}), "
            f"RSS {row['rss_bytes_per_customer']:,} B/customer",
            flush=True,
        )
        rows.append(row)
    write(rows, a.out)


if __name__ == "__main__":
    main()
