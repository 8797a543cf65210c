"""Properties of the presence engine over random streams: out of order, duplicated, jittery,
spoofed, from a few customers around a few fences, split into transactions that fail."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_engine.models import (
    CustomerCursor,
    FenceObservation,
    FenceState,
    Fix,
    PresenceConfig,
    PresenceEvent,
)
from geo_engine.presence import Changes, PresenceEngine

LAT0, LON0 = 48.85, 2.35
M_PER_DEG_LAT = 111_195.08
# 1-D fences along a meridian: [south, north] in metres; f1 and f2 overlap
FENCES = {"f1": (0.0, 100.0), "f2": (80.0, 200.0), "f3": (400.0, 450.0)}
CONFIG = PresenceConfig(dwell_after_s=300, exit_after_s=180, stale_exit_after_s=3600)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Op = Fix | float  # a fix to apply, or a sweep at that wall-clock time


def north_of(f: Fix) -> float:
    return (f.lat - LAT0) * M_PER_DEG_LAT


def observations(engine: PresenceEngine, f: Fix) -> list[FenceObservation]:
    """What the pipeline passes: every fence containing the fix, every fence the customer is in."""
    y = north_of(f)
    inside = engine.inside(f.customer_id)
    out = []
    for fid, (south, north) in FENCES.items():
        depth = min(y - south, north - y)
        if depth >= 0 or fid in inside:
            out.append(FenceObservation(fid, depth))
    return out


@st.composite
def streams(draw: st.DrawFn) -> list[Fix]:
    """Fixes of 1-3 customers walking and jittering around the fences, with spoofed jumps,
    trains, mock fixes and equal timestamps; then shuffled a little and partly duplicated."""
    fixes: list[Fix] = []
    for c in range(draw(st.integers(1, 3))):
        t = float(draw(st.integers(0, 50)))
        y = float(draw(st.integers(-100, 500)))
        for _ in range(draw(st.integers(0, 30))):
            t += draw(st.sampled_from([0, 1, 10, 30, 60, 60, 120, 200, 400, 2000, 5000]))
            move = draw(st.sampled_from(["stay", "walk", "walk", "jitter", "jump", "train"]))
            if move == "walk":
                y += draw(st.integers(-60, 60))
            elif move == "jitter":
                y = draw(st.sampled_from([-5, 5, 75, 85, 95, 105, 195, 205, 395, 405]))
            elif move == "train":
                y += 20_000.0
            at = y + 80_000.0 if move == "jump" else y  # a one-off spoofed position
            acc = draw(st.sampled_from([None, 0.0, 5.0, 10.0, 30.0, 80.0, 150.0]))
            mock = draw(st.integers(0, 9)) == 0
            fixes.append(Fix(f"c{c}", t, LAT0 + at / M_PER_DEG_LAT, LON0, acc, mock))
    fixes.sort(key=lambda f: f.ts)
    n = len(fixes)
    if n > 1:
        for i, j in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)))):
            fixes[i], fixes[j] = fixes[j], fixes[i]
        for i, j in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n)))):
            fixes.insert(max(i + 1, j), fixes[i])  # a resend, after the original
    return fixes


def with_sweeps(fixes: Sequence[Fix], where: Sequence[int]) -> list[Op]:
    """Sweeps inserted before the given positions, at a wall clock no later than any fix still
    to come (clients' clocks are right and nothing is delayed past a sweep)."""
    ops: list[Op] = []
    spots = set(where)
    for i, f in enumerate(fixes):
        if i in spots:
            ops.append(min(g.ts for g in fixes[i:]))
        ops.append(f)
    return ops


def end_of(fixes: Sequence[Fix]) -> float:
    return max((f.ts for f in fixes), default=0.0) + 10 * 24 * 3600.0


def run(engine: PresenceEngine, ops: Sequence[Op]) -> list[PresenceEvent]:
    events: list[PresenceEvent] = []
    for op in ops:
        if isinstance(op, Fix):
            events += engine.apply(op, observations(engine, op)).events
        else:
            events += engine.sweep(op)
    return events


State = dict[str, tuple[CustomerCursor | None, dict[str, FenceState]]]


def state_of(engine: PresenceEngine, fixes: Sequence[Fix]) -> State:
    return {
        f.customer_id: (engine.cursor(f.customer_id), dict(engine.inside(f.customer_id)))
        for f in fixes
    }


def per_fence(events: Sequence[PresenceEvent]) -> dict[tuple[str, str], list[PresenceEvent]]:
    out: dict[tuple[str, str], list[PresenceEvent]] = defaultdict(list)
    for e in events:
        out[(e.customer_id, e.geofence_id)].append(e)
    return dict(out)


VISITS = re.compile(r"(ED?X)*(ED?)?")


def check_invariants(events: Sequence[PresenceEvent]) -> None:
    for key, evs in per_fence(events).items():
        word = "".join({"enter": "E", "dwell": "D", "exit": "X"}[e.type] for e in evs)
        assert VISITS.fullmatch(word), (key, word)
    last: dict[str, float] = {}
    for e in events:
        assert e.ts >= last.get(e.customer_id, float("-inf")), e
        last[e.customer_id] = e.ts
        assert e.source == "gps"


@SETTINGS
@given(streams())
def test_visits_are_well_formed_and_in_time_order(fixes: list[Fix]) -> None:
    engine = PresenceEngine(CONFIG)
    events = run(engine, [*fixes, end_of(fixes)])
    check_invariants(events)
    assert engine.customers_inside() == 0  # stale exit closes every visit in the end


@SETTINGS
@given(streams(), st.data())
def test_sweeps_at_any_wall_clock_keep_visits_well_formed(
    fixes: list[Fix], data: st.DataObject
) -> None:
    """Even with client clocks off from the wall clock, or fixes delayed past a sweep."""
    ops: list[Op] = list(fixes)
    for _ in range(data.draw(st.integers(0, 8))):
        ops.insert(data.draw(st.integers(0, len(ops))), float(data.draw(st.integers(0, 30_000))))
    check_invariants(run(PresenceEngine(CONFIG), [*ops, end_of(fixes)]))


@SETTINGS
@given(streams())
def test_resent_fixes_change_nothing(fixes: list[Fix]) -> None:
    unique = list(dict.fromkeys(fixes))  # first occurrence of each fix
    a, b = PresenceEngine(CONFIG), PresenceEngine(CONFIG)
    assert run(a, fixes) == run(b, unique)
    assert state_of(a, fixes) == state_of(b, fixes)


@SETTINGS
@given(streams(), st.data())
def test_events_do_not_depend_on_when_sweep_runs(fixes: list[Fix], data: st.DataObject) -> None:
    where = data.draw(st.lists(st.integers(0, max(len(fixes) - 1, 0))))
    a, b = PresenceEngine(CONFIG), PresenceEngine(CONFIG)
    swept = run(a, [*with_sweeps(fixes, where), end_of(fixes)])
    plain = run(b, [*fixes, end_of(fixes)])
    check_invariants(swept)
    assert per_fence(swept) == per_fence(plain)


@dataclass
class Db:
    """What the pipeline persists, from Changes only."""

    cursors: dict[str, CustomerCursor]
    states: dict[tuple[str, str], FenceState]

    def write(self, changes: Changes) -> None:
        self.cursors.update(changes.cursors)
        for key, st_ in changes.states.items():
            if st_ is None:
                self.states.pop(key, None)
            else:
                self.states[key] = st_

    def restart(self) -> PresenceEngine:
        engine = PresenceEngine(CONFIG)
        engine.load(self.cursors.items(), ((c, f, s) for (c, f), s in self.states.items()))
        return engine

    def matches(self, engine: PresenceEngine, fixes: Sequence[Fix]) -> bool:
        return state_of(self.restart(), fixes) == state_of(engine, fixes)


@SETTINGS
def replay_with_failures(
    ops: Sequence[Any],
    data: st.DataObject,
    who: Sequence[Fix],
    runner: Callable[[PresenceEngine, Sequence[Any]], list[PresenceEvent]] | None = None,
) -> tuple[PresenceEngine, list[PresenceEvent]]:
    """Run `ops` in random batches whose database write fails (before or after commit()) and is
    retried, restarting the engine now and then from what was persisted; the database must
    equal memory after every batch. Returns the final engine and the committed events."""
    runner = runner or run
    db = Db({}, {})
    engine = PresenceEngine(CONFIG)
    events: list[PresenceEvent] = []
    i = 0
    while i < len(ops):
        batch = ops[i : i + data.draw(st.integers(1, 8))]
        outcome = data.draw(st.sampled_from(["ok", "ok", "fail", "fail_after_commit", "restart"]))
        engine.begin()
        got = runner(engine, batch)
        if outcome == "fail":
            engine.rollback()
        elif outcome == "fail_after_commit":
            engine.commit()
            engine.rollback()
        else:
            db.write(engine.commit())
            events += got
            i += len(batch)
            if outcome == "restart":
                engine = db.restart()
        assert db.matches(engine, who)
    return engine, events


@given(streams(), st.data())
def test_failed_transactions_and_restarts_change_nothing(
    fixes: list[Fix], data: st.DataObject
) -> None:
    """Batches whose database write fails (before or after commit()) are rolled back and
    re-applied; the engine sometimes restarts from what was persisted. Same events as one
    plain run, and the database always equals memory."""
    where = data.draw(st.lists(st.integers(0, max(len(fixes) - 1, 0))))
    ops: list[Op] = [*with_sweeps(fixes, where), end_of(fixes)]
    reference = PresenceEngine(CONFIG)
    expected = run(reference, ops)

    engine, events = replay_with_failures(ops, data, fixes)
    assert events == expected
    assert state_of(engine, fixes) == state_of(reference, fixes)
