"""The presence rules, one by one (geo_engine/presence.py documents them)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import pytest

from geo_engine.models import (
    CustomerCursor,
    FenceObservation,
    FenceState,
    Fix,
    FixFlag,
    PresenceConfig,
    PresenceEvent,
    PresenceEventType,
)
from geo_engine.presence import PresenceEngine

LAT0, LON0 = 48.85, 2.35
M_PER_DEG_LAT = 111_195.08
CFG = PresenceConfig()  # enter 0.5*acc, max enter acc 100, unknown 30, buffer 25, timeout 180,
# dwell 300, stale 4 h, 70 m/s, re-anchor after 3

E, D, X = PresenceEventType.ENTER, PresenceEventType.DWELL, PresenceEventType.EXIT


def fix(
    ts: float,
    north_m: float = 0.0,
    acc: float | None = 10.0,
    cid: str = "c1",
    mock: bool = False,
) -> Fix:
    return Fix(cid, ts, LAT0 + north_m / M_PER_DEG_LAT, LON0, acc, mock)


def ob(depth: float, fence: str = "f1") -> list[FenceObservation]:
    return [FenceObservation(fence, depth)]


def kinds(
    events: Iterable[PresenceEvent],
) -> list[tuple[PresenceEventType, str, float, str | None]]:
    return [(e.type, e.geofence_id, e.ts, e.reason) for e in events]


def entered(engine: PresenceEngine, ts: float = 0.0, fence: str = "f1") -> PresenceEngine:
    res = engine.apply(fix(ts), ob(50.0, fence))
    assert kinds(res.events) == [(E, fence, ts, None)]
    return engine


def snapshot(
    engine: PresenceEngine, cids: Iterable[str] = ("c1", "c2")
) -> dict[str, tuple[CustomerCursor | None, dict[str, FenceState]]]:
    return {c: (engine.cursor(c), dict(engine.inside(c))) for c in cids}


# -- enter -------------------------------------------------------------------------------------


def test_enter_needs_depth_of_half_the_accuracy() -> None:
    e = PresenceEngine()
    r = e.apply(fix(0, acc=20.0), ob(9.9))
    assert r.events == [] and r.flag is None and not e.is_inside_any("c1")
    r = e.apply(fix(10, acc=20.0), ob(10.0))
    assert kinds(r.events) == [(E, "f1", 10, None)]
    assert r.events[0].source == "gps"
    assert e.inside("c1")["f1"] == FenceState(10, 10, None, False)


@pytest.mark.parametrize("acc", [None, 0.0])
def test_unknown_accuracy_uses_the_configured_default(acc: float | None) -> None:
    e = PresenceEngine()
    assert e.apply(fix(0, acc=acc), ob(14.9)).events == []  # needs 0.5 * 30
    assert kinds(e.apply(fix(10, acc=acc), ob(15.0)).events) == [(E, "f1", 10, None)]


def test_huge_accuracy_never_enters_and_is_flagged() -> None:
    e = PresenceEngine()
    r = e.apply(fix(0, acc=101.0), ob(10_000.0))
    assert r.events == [] and r.flag is FixFlag.LOW_ACCURACY
    assert not e.is_inside_any("c1")
    assert e.cursor("c1") is not None  # the cursor still moves
    # not flagged when it would not have entered anything anyway
    assert e.apply(fix(10, acc=500.0), ob(-3.0)).flag is None
    assert e.apply(fix(20, acc=500.0), []).flag is None


def test_huge_accuracy_keeps_and_exits_only_when_far_out() -> None:
    e = entered(PresenceEngine())
    assert e.apply(fix(10, acc=500.0), ob(-749.0)).events == []  # needs 1.5 * 500 outside
    assert "f1" in e.inside("c1")
    r = e.apply(fix(20, acc=500.0), ob(-750.0))
    assert kinds(r.events) == [(X, "f1", 20, "buffer")]


# -- edge jitter and exits ---------------------------------------------------------------------


def test_edge_jitter_never_flaps() -> None:
    e = PresenceEngine(PresenceConfig(exit_buffer_m=25.0))
    events: list[PresenceEvent] = []
    for i in range(200):
        ts = 10.0 * i
        events += e.apply(fix(ts, acc=8.0), ob(5.0 if i % 2 == 0 else -5.0)).events
        events += e.sweep(ts + 9.0)
    assert [ev.type for ev in events].count(E) == 1
    assert [ev.type for ev in events].count(X) == 0
    assert [ev.type for ev in events].count(D) == 1
    assert e.is_inside_any("c1")


def test_exit_by_buffer() -> None:
    e = entered(PresenceEngine())
    assert e.apply(fix(10), ob(-24.9)).events == []
    assert e.inside("c1")["f1"].outside_since == 10
    assert kinds(e.apply(fix(20), ob(-25.0)).events) == [(X, "f1", 20, "buffer")]
    assert not e.is_inside_any("c1")
    assert e.sweep(10_000) == []  # nothing left to time out


def test_exit_buffer_grows_with_a_vague_fix() -> None:
    e = entered(PresenceEngine())
    assert e.apply(fix(10, acc=80.0), ob(-119.0)).events == []  # needs 1.5 * 80 outside
    assert kinds(e.apply(fix(20, acc=80.0), ob(-120.0)).events) == [(X, "f1", 20, "buffer")]
    e = entered(PresenceEngine(PresenceConfig(exit_accuracy_fraction=0.5)))
    assert kinds(e.apply(fix(10, acc=80.0), ob(-40.0)).events) == [(X, "f1", 10, "buffer")]


def test_vague_indoor_fixes_a_little_outside_keep_the_visit() -> None:
    """Indoors accuracy degrades to 20-60 m and fixes scatter past the walls: a fix that is
    outside by less than half its uncertainty is consistent with being inside (mirror of the
    enter rule) and never starts the exit timer (the demo's split visits)."""
    e = entered(PresenceEngine(PresenceConfig(dwell_after_s=10_000)))
    events: list[PresenceEvent] = []
    for i in range(1, 60):  # 20 minutes of 40 m fixes landing 5-19 m outside
        events += e.apply(fix(20.0 * i, acc=40.0), ob(-5.0 - (i % 15))).events
        events += e.sweep(20.0 * i + 19)
    assert events == []
    assert e.inside("c1")["f1"].outside_since is None
    # clearly outside for its uncertainty (>= 20 m) starts the timer; far enough exits
    assert e.apply(fix(1300, acc=40.0), ob(-21.0)).events == []
    assert e.inside("c1")["f1"].outside_since == 1300
    assert kinds(e.sweep(1480)) == [(X, "f1", 1480, "timeout")]


def test_exit_by_timeout_on_a_fix_is_dated_at_the_deadline() -> None:
    e = entered(PresenceEngine())
    assert e.apply(fix(100), ob(-5.0)).events == []  # outside since 100
    assert e.apply(fix(200), ob(-5.0)).events == []
    r = e.apply(fix(290), ob(-5.0))
    assert kinds(r.events) == [(X, "f1", 280, "timeout")]  # no dwell: outside at 300
    assert not e.is_inside_any("c1")


def test_an_inside_fix_restarts_the_timeout() -> None:
    e = entered(PresenceEngine(PresenceConfig(dwell_after_s=10_000)))
    e.apply(fix(100), ob(-5.0))
    e.apply(fix(200), ob(1.0))  # back inside: outside_since cleared
    assert e.apply(fix(290), ob(-5.0)).events == []
    assert e.sweep(469) == []
    assert kinds(e.sweep(470)) == [(X, "f1", 470, "timeout")]


def test_exit_by_timeout_on_sweep() -> None:
    e = entered(PresenceEngine())
    e.apply(fix(100), ob(-5.0))
    assert e.sweep(279.9) == []
    assert kinds(e.sweep(1000)) == [(X, "f1", 280, "timeout")]
    assert e.sweep(2000) == []


def test_timeout_fired_by_a_late_inside_fix_then_reenters() -> None:
    """Outside for exit_after_s by the last information: the exit stands even if the fix that
    reveals it is inside (as sweep would have done), then the fix enters again."""
    e = entered(PresenceEngine(PresenceConfig(dwell_after_s=10_000)))
    e.apply(fix(100), ob(-5.0))
    r = e.apply(fix(400), ob(30.0))
    assert kinds(r.events) == [(X, "f1", 280, "timeout"), (E, "f1", 400, None)]


# -- dwell -------------------------------------------------------------------------------------


def test_dwell_once_by_fixes_dated_entered_plus_dwell() -> None:
    e = entered(PresenceEngine())
    events: list[PresenceEvent] = []
    for ts in range(60, 1200, 60):
        events += e.apply(fix(ts), ob(40.0)).events
    assert kinds(events) == [(D, "f1", 300, None)]
    assert e.inside("c1")["f1"].dwell_fired


def test_dwell_by_sweep_then_never_again() -> None:
    e = entered(PresenceEngine())
    assert e.sweep(299) == []
    assert kinds(e.sweep(305)) == [(D, "f1", 300, None)]
    assert e.apply(fix(310), ob(40.0)).events == []
    assert e.sweep(1000) == []
    assert e.apply(fix(1000), ob(40.0)).events == []


def test_dwell_then_exit_from_one_fix() -> None:
    e = entered(PresenceEngine())
    r = e.apply(fix(400), ob(-100.0))
    assert kinds(r.events) == [(D, "f1", 300, None), (X, "f1", 400, "buffer")]


def test_no_dwell_while_outside_at_dwell_time_it_waits_for_an_inside_fix() -> None:
    e = entered(PresenceEngine())
    e.apply(fix(250), ob(-5.0))  # tentatively outside at 300
    assert e.sweep(320) == []
    assert e.apply(fix(320), ob(-5.0)).events == []
    assert kinds(e.apply(fix(330), ob(5.0)).events) == [(D, "f1", 330, None)]
    assert e.apply(fix(340), ob(5.0)).events == []


def test_no_dwell_when_the_visit_times_out_while_outside() -> None:
    e = entered(PresenceEngine())
    e.apply(fix(250), ob(-5.0))
    assert kinds(e.sweep(10_000)) == [(X, "f1", 430, "timeout")]


def test_dwell_after_zero_fires_with_the_enter() -> None:
    e = PresenceEngine(PresenceConfig(dwell_after_s=0))
    assert kinds(e.apply(fix(5), ob(50.0)).events) == [(E, "f1", 5, None), (D, "f1", 5, None)]
    assert e.sweep(1000) == []


# -- stale, missing observations, ordering -----------------------------------------------------


def test_stale_exit_by_sweep() -> None:
    e = entered(PresenceEngine())
    assert kinds(e.sweep(4 * 3600 - 1)) == [(D, "f1", 300, None)]
    assert kinds(e.sweep(4 * 3600 + 50)) == [(X, "f1", 4 * 3600, "stale")]
    assert not e.is_inside_any("c1")


def test_stale_exit_disabled() -> None:
    e = entered(PresenceEngine(PresenceConfig(stale_exit_after_s=0)))
    assert kinds(e.sweep(10**9)) == [(D, "f1", 300, None)]
    assert e.is_inside_any("c1")


def test_stale_exit_by_a_fix_after_a_long_silence_then_reenter() -> None:
    e = entered(PresenceEngine())
    r = e.apply(fix(5 * 3600), ob(40.0))
    assert kinds(r.events) == [
        (D, "f1", 300, None),
        (X, "f1", 4 * 3600, "stale"),
        (E, "f1", 5 * 3600, None),
    ]


def test_a_missing_inside_fence_gets_no_information() -> None:
    e = entered(PresenceEngine())
    before = e.inside("c1")["f1"]
    r = e.apply(fix(1000), ob(60.0, "f2"))  # f1 not observed
    assert kinds(r.events) == [(E, "f2", 1000, None)]
    assert e.inside("c1")["f1"] is before  # no dwell, no refresh, no exit
    # sweep still handles it, never dated before the customer's latest fix
    assert kinds(e.sweep(1001)) == [(D, "f1", 1000, None)]


def test_events_of_one_fix_are_in_time_order() -> None:
    e = entered(PresenceEngine())
    r = e.apply(fix(400), [FenceObservation("f2", 50.0), FenceObservation("f1", 40.0)])
    assert kinds(r.events) == [(D, "f1", 300, None), (E, "f2", 400, None)]


def test_a_fix_older_than_a_swept_event_is_late() -> None:
    e = entered(PresenceEngine())
    assert kinds(e.sweep(400)) == [(D, "f1", 300, None)]
    cur = e.cursor("c1")
    assert cur is not None and cur.last_event_ts == 300
    assert e.apply(fix(250), ob(-100.0)).flag is FixFlag.LATE
    assert e.is_inside_any("c1")
    assert kinds(e.apply(fix(300), ob(-100.0)).events) == [(X, "f1", 300, "buffer")]
    cur = e.cursor("c1")
    assert cur is not None and cur.last_event_ts is None


# -- drop_fence, accessors, load ---------------------------------------------------------------


def test_drop_fence_forgets_states_without_events() -> None:
    e = PresenceEngine()
    e.apply(fix(0), [FenceObservation("f1", 50.0), FenceObservation("f2", 50.0)])
    e.apply(fix(0, cid="c2"), ob(50.0))
    e.begin()
    e.drop_fence("f1")
    changes = e.commit()
    assert changes.states == {("c1", "f1"): None, ("c2", "f1"): None}
    assert changes.cursors == {}
    assert set(e.inside("c1")) == {"f2"} and not e.is_inside_any("c2")
    assert [ev.geofence_id for ev in e.sweep(10**6)] == ["f2", "f2"]  # dwell, stale exit
    assert e.customers_inside() == 0


def test_metrics_and_empty_inside() -> None:
    e = PresenceEngine()
    assert e.inside("nobody") == {} and e.customers_inside() == 0 and e.active_customers() == 0
    e.apply(fix(0), ob(50.0))
    e.apply(fix(0, cid="c2"), [])
    assert e.customers_inside() == 1 and e.active_customers() == 2
    assert e.is_inside_any("c1") and not e.is_inside_any("c2")


def test_loaded_state_is_swept() -> None:
    e = PresenceEngine()
    e.load(
        [("c1", CustomerCursor(100, LAT0, LON0, 10.0))],
        [("c1", "f1", FenceState(0, 100, None, False)), ("c1", "f2", FenceState(0, 100, 150))],
    )
    assert e.customers_inside() == 1 and e.active_customers() == 1
    assert kinds(e.sweep(400)) == [(D, "f1", 300, None), (X, "f2", 330, "timeout")]


def jitter_run(e: PresenceEngine) -> list[PresenceEvent]:
    """Customers stepping out and back: each step out lowers a deadline below the counted one,
    leaving a superseded heap entry behind; some leave and come back."""
    events: list[PresenceEvent] = []
    for step in range(150):
        ts = 100.0 * step
        for c in range(20):
            depth = (-5.0, 5.0, 5.0)[(step + c) % 3] if (step + c) % 37 else -60.0
            events += e.apply(fix(ts, cid=f"c{c}", acc=8.0), ob(depth, f"f{c % 4}")).events
            if (step + c) % 37 == 1:
                events += e.apply(fix(ts + 1, cid=f"c{c}", acc=8.0), ob(40.0, f"f{c % 4}")).events
        events += e.sweep(ts + 50.0)
    return events + e.sweep(10**7)


def test_heap_compaction_changes_no_event(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = jitter_run(PresenceEngine())
    monkeypatch.setattr("geo_engine.presence_state._HEAP_SLACK", 0)
    e = PresenceEngine()
    pushes_before = len(e._heap)
    assert jitter_run(e) == expected
    assert pushes_before == 0 and len(e._heap) <= 2 * len(e._sched) + 1
    assert {ev.reason for ev in expected} == {None, "buffer", "timeout", "stale"}


def test_sweep_copies_every_cursor_field() -> None:
    """sweep() rebuilds cursors by hand (for speed): a field added to the model must be kept."""
    values = {f.name: float(i + 1) for i, f in enumerate(msgspec.structs.fields(CustomerCursor))}
    cur = CustomerCursor(**values)  # type: ignore[arg-type]
    e = PresenceEngine()
    e.load([("c1", cur)], [("c1", "f1", FenceState(0, 0.5, None, True))])
    assert kinds(e.sweep(10**6)) == [(X, "f1", 4 * 3600 + 0.5, "stale")]
    assert e.cursor("c1") == msgspec.structs.replace(cur, last_event_ts=4 * 3600 + 0.5)


def test_shared_empty_results_are_read_only() -> None:
    e = PresenceEngine()
    r = e.apply(fix(0), [])
    assert r.events == [] and r.flag is None
    with pytest.raises(TypeError):
        r.events.append(PresenceEvent(E, "c1", "f1", 0))
    assert e.apply(fix(1), []).events == []
