"""The demo's scorecard: the engine's events held against the simulated day's ground truth, and
the summary tables the CLI prints and the report repeats."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from adapters.demo import detection, readback
from adapters.demo import loop as lp
from adapters.demo import simulate as sim
from adapters.demo.city import City

Tables = list[tuple[str, list[str], list[list[str]]]]


@dataclass(slots=True)
class Event:
    id: int
    type: str
    customer_id: str
    fence_id: str
    ts: float  # seconds after local midnight of the simulated day
    source: str = "gps"  # the evidence: gps, beacon, nfc


@dataclass
class Sent:
    """What the API answered, row by row."""

    accepted: int = 0
    rejected: int = 0
    ignored: list[str] = field(default_factory=list)  # per row: the reason, or ""
    events: list[Event] = field(default_factory=list)
    sweeps: int = 0
    wall_s: float = 0.0
    signals: detection.SignalStats = field(default_factory=detection.SignalStats)


@dataclass
class DemoSummary:
    day: date
    customers: int
    stores: int
    fences: int
    fixes: int  # taken by the phones
    rows: int  # sent: after drops, with resent copies and malformed rows
    accepted: int
    rejected: int
    ignored: Counter[str]
    wall_s: float  # sending, end to end
    sweeps: int
    events: Counter[tuple[str, str]]  # (type, fence kind)
    listed: Counter[str]  # read back through GET /v1/presence-events
    # (brand, what): planned visits (ground truth); of them detected (an enter at the store
    # fence during the visit), dwell, exit, split (entered more than once: presence flapped);
    # pairs: enter -> exit pairs at store and competitor fences
    visits: Counter[tuple[str, str]]
    by_store: Counter[tuple[str, str]]  # (store id, "planned" or "detected")
    malformed: int  # rows sent with a millisecond timestamp
    mock_rows: int  # rows sent with mock=true
    walkpasts: int
    walkpast_triggers: int  # enters during a walk-past: must be 0
    spoof_rows: int
    spoof_triggers: int  # enters caused by spoofed fixes: must be 0
    unplanned: int  # other enters matching no planned visit
    sequence_errors: int  # exit or dwell without enter, enter while inside: must be 0
    showcase: int  # the customer whose day the report draws
    sim_s: float = 0.0
    total_s: float = 0.0
    report: Path | None = None
    marketing: readback.Marketing | None = None
    loop: lp.Loop | None = None
    signals: detection.SignalStats = field(default_factory=detection.SignalStats)

    def total(self, what: str) -> int:
        return sum(n for (_, w), n in self.visits.items() if w == what)

    @property
    def pings_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


def score(
    city: City,
    fleet: sim.Fleet,
    sent: Sent,
    listed: Counter[str],
    day: date,
    located: set[int] | None = None,
) -> DemoSummary:
    """Hold the engine's events against the ground truth of the simulated day: the truth of
    the customers who may be located (`located`; None: all), the others' pings are dropped.
    Per visit, which signals saw it: detection.py."""
    seen = (
        np.ones(len(fleet.ts), bool) if located is None else np.isin(fleet.customer, list(located))
    )
    fleet_visits = [v for v in fleet.visits if located is None or v.customer in located]
    kind = {f.id: f.kind for f in city.fences}
    store_of = {f.id: f.store for f in city.fences}
    brand = [s.brand.name for s in city.stores]
    visits, walks, spoofed = defaultdict(list), defaultdict(list), defaultdict(list)
    for i, v in enumerate(fleet_visits):
        visits[v.customer].append((i, v))
    for w in fleet.walkpasts:
        if located is None or w.customer in located:
            walks[w.customer].append(w)
    spoof = ((fleet.phase == sim.SPOOF_MOCK) | (fleet.phase == sim.SPOOF_JUMP)) & seen
    for c, t in zip(fleet.customer[spoof].tolist(), fleet.ts[spoof].tolist(), strict=True):
        spoofed[c].append(t)
    got: dict[str, Counter[int]] = {k: Counter() for k in ("enter", "dwell", "exit")}
    inside: set[tuple[str, str]] = set()
    tally: Counter[tuple[str, str]] = Counter()
    saw: defaultdict[int, set[str]] = defaultdict(set)  # visit -> the signals that saw it
    errors = walk_hits = spoof_hits = unplanned = 0
    for e in sorted(sent.events, key=lambda e: (e.ts, e.id)):
        key, c, s = (e.customer_id, e.fence_id), int(e.customer_id[1:]), store_of[e.fence_id]
        main = kind[e.fence_id] != "zone"
        if e.type == "enter":
            errors += key in inside
            inside.add(key)
        elif key not in inside:
            errors += 1
        elif e.type == "exit":
            inside.discard(key)
            tally[(brand[s], "pairs")] += main
        # one visit per store and day: an exit belongs to it however late the news came
        late = math.inf if e.type == "exit" else 300
        match = [i for i, v in visits[c] if v.store == s and v.t_in - 300 <= e.ts <= v.t_out + late]
        if match and main:
            got[e.type][match[0]] += 1
            if (signal := detection.evidence(e.type, e.source)) is not None:
                saw[match[0]].add(signal)
        elif not match and e.type == "enter":
            if any(w.t_in - 120 <= e.ts <= w.t_out + 300 for w in walks[c]):
                walk_hits += 1
            elif any(0 <= e.ts - t <= 600 for t in spoofed[c]):
                spoof_hits += 1
            else:
                unplanned += 1
    stores = {st.id: k for k, st in enumerate(city.stores)}
    detection.add_heard(saw, visits, stores, sent.signals.heard)
    sent.signals.sources = Counter((e.type, e.source) for e in sent.events)
    tally.update(detection.tally(brand, fleet_visits, saw))
    by_store: Counter[tuple[str, str]] = Counter()
    for i, v in enumerate(fleet_visits):
        b, sid, n = brand[v.store], city.stores[v.store].id, got["enter"][i]
        hits = {"planned": 1, "detected": n, "dwell": got["dwell"][i], "exit": got["exit"][i]}
        for what, hit in (*hits.items(), ("split", n > 1)):
            tally[(b, what)] += hit > 0
        by_store[(sid, "planned")] += 1
        by_store[(sid, "detected")] += n > 0
    good = {v.customer for i, v in enumerate(fleet_visits) if got["dwell"][i]} - set(spoofed)
    return DemoSummary(
        day=day, customers=int(fleet.customer.max()) + 1 if len(fleet.ts) else 0,
        stores=len(city.stores), fences=len(city.fences), fixes=fleet.fixes,
        rows=len(fleet.ts), accepted=sent.accepted, rejected=sent.rejected,
        ignored=Counter(r for r in sent.ignored if r), wall_s=sent.wall_s, sweeps=sent.sweeps,
        events=Counter((e.type, kind[e.fence_id]) for e in sent.events), listed=listed,
        visits=tally, by_store=by_store, malformed=int(fleet.bad.sum()),
        mock_rows=int((fleet.mock & seen).sum()), walkpasts=sum(map(len, walks.values())),
        walkpast_triggers=walk_hits, spoof_rows=int(spoof.sum()), spoof_triggers=spoof_hits,
        unplanned=unplanned, sequence_errors=errors, signals=sent.signals,
        showcase=min((c for c in good if walks[c]), default=min(good, default=0)),
    )  # fmt: skip


def summary_tables(s: DemoSummary) -> Tables:
    """The summary as (title, header, rows): printed by the CLI, repeated in the report."""
    run = [
        ["customers", f"{s.customers:,}"],
        ["stores / fences", f"{s.stores} / {s.fences}"],
        ["fixes taken by the phones", f"{s.fixes:,}"],
        ["pings sent (after drops; with resends)", f"{s.rows:,}"],
        ["accepted / rejected (malformed)", f"{s.accepted:,} / {s.rejected:,}"],
        *([f"ignored: {r}", f"{n:,}"] for r, n in sorted(s.ignored.items())),
        ["sweeps on the simulated clock", f"{s.sweeps:,}"],
        ["pings/s end to end (wall clock)", f"{s.pings_per_s:,.0f} ({s.wall_s:,.1f} s)"],
        ["wall time in all (s)", f"{s.total_s:,.1f} (simulation {s.sim_s:,.1f})"],
    ]
    kinds = ("store", "zone", "competitor")
    events = [
        [t, *(f"{s.events[(t, k)]:,}" for k in kinds), f"{s.listed[t]:,}"]
        for t in ("enter", "dwell", "exit")
    ]
    cols = ("detected", "dwell", "exit", "split", "pairs")
    visits = []
    for b in sorted({b for b, _ in s.visits}):
        p, d = s.visits[(b, "planned")], s.visits[(b, "detected")]
        n = [f"{s.visits[(b, w)]:,}" for w in cols]
        visits.append([b, f"{p:,}", f"{n[0]} ({100 * d / max(p, 1):.0f}%)", *n[1:]])
    checks = [
        [f"{what} (of {n:,})" if n else what, f"{v:,}", "ok" if not v else must]
        for what, n, v, must in (
            ("walk-pasts that triggered an enter", s.walkpasts, s.walkpast_triggers, "FAIL"),
            ("spoofed fixes that triggered an enter", s.spoof_rows, s.spoof_triggers, "FAIL"),
            ("enters matching no planned visit", 0, s.unplanned, "note"),
            ("event sequence errors", 0, s.sequence_errors, "FAIL"),
        )
    ]
    head = ["brand", "planned", "detected", "dwell", "exit", "split", "enter→exit"]
    return [
        (f"Demo day {s.day:%A %d %B %Y}, Paris", ["", ""], run),
        ("Presence events (by fence kind)", ["type", *kinds, "read back via API"], events),
        ("Store visits (planned = ground truth)", head, visits),
        *detection.tables(s.signals, s.visits, s.customers),
        ("Checks", ["", "", ""], checks),
        *(readback.tables(s.marketing, s.ignored) if s.marketing else []),
        *(lp.tables(s.loop, s.marketing.audience.campaigns) if s.loop and s.marketing else []),
    ]


def print_summary(s: DemoSummary, console: Console) -> None:
    marks = {"ok": "[green]ok[/]", "FAIL": "[bold red]FAIL[/]", "note": "[yellow]note[/]"}
    for title, head, rows in summary_tables(s):
        t = Table(title=title, title_justify="left", title_style="bold")
        for i, h in enumerate(head):
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*(marks.get(c, c) for c in r))
        console.print(t)
    if s.report:
        console.print(f"Report: [bold]{s.report}[/]")
