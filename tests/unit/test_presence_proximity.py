"""Proximity evidence (beacons, NFC) in the presence state machine: the rules one by one, then
hypothesis properties over streams mixing GPS fixes, proximity signals and sweeps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geo_engine.models import (
    CustomerCursor,
    FenceObservation,
    FenceState,
    Fix,
    FixFlag,
    PresenceEvent,
    PresenceEventType,
)
from geo_engine.presence import PresenceEngine
from tests.unit.test_presence_properties import (
    CONFIG,
    FENCES,
    LAT0,
    LON0,
    M_PER_DEG_LAT,
    SETTINGS,
    VISITS,
    observations,
    per_fence,
    replay_with_failures,
    state_of,
    streams,
)

E, D, X = PresenceEventType.ENTER, PresenceEventType.DWELL, PresenceEventType.EXIT
BEACON_HOLD, NFC_HOLD = 90.0, 1200.0


def fix(ts: float, north_m: float = 0.0, acc: float | None = 10.0, cid: str = "c1") -> Fix:
    return Fix(cid, ts, LAT0 + north_m / M_PER_DEG_LAT, LON0, acc)


def ob(depth: float, fence: str = "store") -> list[FenceObservation]:
    return [FenceObservation(fence, depth)]


def beacon(e: PresenceEngine, ts: float, *fences: str, cid: str = "c1") -> list[PresenceEvent]:
    return e.apply_proximity(cid, fences or ("zone",), ts, "beacon", BEACON_HOLD).events


def kinds(
    events: Iterable[PresenceEvent],
) -> list[tuple[PresenceEventType, str, float, str, str | None]]:
    return [(e.type, e.geofence_id, e.ts, e.source, e.reason) for e in events]


# -- the rules ---------------------------------------------------------------------------------


def test_a_beacon_enters_dwells_with_renewals_and_exits_when_no_longer_heard() -> None:
    e = PresenceEngine()
    assert kinds(beacon(e, 100)) == [(E, "zone", 100, "beacon", None)]
    st_ = e.inside("c1")["zone"]
    assert (st_.source, st_.gps_confirmed, st_.held_until, st_.held_by) == (
        "beacon",
        False,
        190,
        "beacon",
    )
    heard = [ev for t in range(130, 461, 30) for ev in beacon(e, t)]  # every 30 s
    assert kinds(heard) == [(D, "zone", 400, "beacon", None)]  # due at 400, fired by a sighting
    assert e.sweep(549) == []
    assert kinds(e.sweep(551)) == [(X, "zone", 550, "beacon", "not_heard")]
    assert not e.is_inside_any("c1")


def test_a_signal_only_customer_has_a_cursor_without_position() -> None:
    e = PresenceEngine()
    beacon(e, 100)
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == float("-inf") and cur.last_event_ts == 100
    # the first fix is accepted (no speed check against a position it never had)...
    assert e.apply(fix(150, north_m=5000), []).flag is None
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == 150 and cur.last_event_ts is None
    # ...unless dated before the signal
    e2 = PresenceEngine()
    beacon(e2, 100)
    assert e2.apply(fix(99), ob(50.0)).flag is FixFlag.LATE


def test_late_signals_and_fixes_older_than_a_signal_change_nothing() -> None:
    e = PresenceEngine()
    e.apply(fix(100), ob(50.0))
    before = (e.cursor("c1"), dict(e.inside("c1")))
    r = e.apply_proximity("c1", ["zone"], 99, "beacon", BEACON_HOLD)
    assert r.flag is FixFlag.LATE and r.events == []
    assert (e.cursor("c1"), dict(e.inside("c1"))) == before
    assert kinds(beacon(e, 100)) == [(E, "zone", 100, "beacon", None)]  # same time: not late
    beacon(e, 200)
    assert e.apply(fix(150), ob(50.0)).flag is FixFlag.LATE
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == 100 and cur.last_lat == LAT0  # position unmoved
    assert e.apply(fix(200), ob(50.0)).flag is None


def test_gps_cannot_exit_a_held_fence_and_exits_when_the_hold_ends() -> None:
    e = PresenceEngine()
    e.apply(fix(0), ob(50.0))  # GPS enters the store
    r = e.apply_proximity("c1", ["store"], 60, "nfc", NFC_HOLD)  # a tap at the till
    assert r.events == [] and e.inside("c1")["store"].held_until == 1260
    assert e.apply(fix(120, north_m=500), ob(-450.0)).events == []  # far out: no buffer exit
    assert e.inside("c1")["store"].outside_since == 120
    assert e.sweep(1259) == []  # the 180 s timeout is put off to the hold's end
    assert kinds(e.sweep(1300)) == [(X, "store", 1260, "gps", "timeout")]


def test_a_gps_confirmed_visit_outlives_its_hold_under_the_gps_rules() -> None:
    """A department beacon also holds the store: leaving its range must not exit a store GPS
    saw the customer enter (the walk to the till would re-enter it)."""
    e = PresenceEngine()
    e.apply(fix(0), ob(50.0))
    beacon(e, 100, "zone", "store")
    assert kinds(e.sweep(1000)) == [
        (X, "zone", 190, "beacon", "not_heard"),
        (D, "store", 300, "gps", None),
    ]
    assert e.inside("c1")["store"].last_inside_at == 100
    assert kinds(e.sweep(100 + 4 * 3600)) == [(X, "store", 100 + 4 * 3600, "gps", "stale")]


def test_vague_gps_never_takes_a_customer_out_of_a_beacon_zone_a_good_fix_confirms_it() -> None:
    e = PresenceEngine()
    beacon(e, 0)
    # indoors, 30 m fixes around a 10 m zone: clearly outside, even beyond the buffer
    assert e.apply(fix(30, acc=30.0), ob(-40.0, "zone")).events == []
    st_ = e.inside("c1")["zone"]
    assert st_.outside_since is None and not st_.gps_confirmed
    assert kinds(e.sweep(100)) == [(X, "zone", 90, "beacon", "not_heard")]
    # a fix that could have entered on its own confirms the visit: GPS rules go on after it
    beacon(e, 200)
    e.apply(fix(220, acc=5.0), ob(8.0, "zone"))
    assert e.inside("c1")["zone"].gps_confirmed
    # its hold ended at 290: no not_heard exit; the dwell (due at 500) goes on as usual
    assert kinds(e.sweep(1000)) == [(D, "zone", 500, "beacon", None)]
    assert kinds(e.apply(fix(1010, acc=5.0), ob(-40.0, "zone")).events) == [
        (X, "zone", 1010, "gps", "buffer")
    ]


def test_a_tap_on_a_store_already_entered_adds_no_event_and_dwell_keeps_the_visit_source() -> None:
    e = PresenceEngine()
    assert kinds(e.apply_proximity("c1", ["zone", "store"], 0, "nfc", NFC_HOLD).events) == [
        (E, "store", 0, "nfc", None),
        (E, "zone", 0, "nfc", None),
    ]
    e.apply(fix(100), ob(50.0))  # GPS inside the store: confirms it, no event
    assert e.apply_proximity("c1", ["store"], 200, "nfc", NFC_HOLD).events == []
    assert kinds(e.sweep(400)) == [(D, "store", 300, "nfc", None), (D, "zone", 300, "nfc", None)]


def test_a_longer_hold_is_not_shortened_by_a_shorter_one() -> None:
    e = PresenceEngine()
    e.apply_proximity("c1", ["zone"], 0, "nfc", NFC_HOLD)
    beacon(e, 10)
    st_ = e.inside("c1")["zone"]
    assert (st_.held_until, st_.held_by, st_.last_inside_at) == (1200, "nfc", 10)
    assert kinds(e.sweep(2000))[-1] == (X, "zone", 1200, "nfc", "not_heard")


def test_a_signal_dates_other_fences_due_exits_at_their_deadline() -> None:
    e = PresenceEngine()
    beacon(e, 0, "zone-a")
    assert kinds(beacon(e, 500, "zone-b")) == [
        (X, "zone-a", 90, "beacon", "not_heard"),
        (E, "zone-b", 500, "beacon", None),
    ]


def test_a_dwell_waiting_for_inside_evidence_fires_on_a_signal() -> None:
    e = PresenceEngine()
    e.apply(fix(0), ob(50.0))
    e.apply(fix(200, acc=5.0), ob(-10.0))  # tentatively outside: the dwell at 300 waits
    assert e.sweep(370) == []
    assert kinds(beacon(e, 370, "store")) == [(D, "store", 370, "gps", None)]


def test_hold_ending_exactly_at_a_signal_exits_before_the_re_enter() -> None:
    e = PresenceEngine()
    beacon(e, 0)
    assert kinds(beacon(e, 90)) == [
        (X, "zone", 90, "beacon", "not_heard"),
        (E, "zone", 90, "beacon", None),
    ]


def test_proximity_changes_roll_back_and_are_reported_in_changes() -> None:
    e = PresenceEngine()
    e.apply(fix(0), ob(50.0))
    before = (e.cursor("c1"), dict(e.inside("c1")))
    e.begin()
    beacon(e, 50, "zone", "store")
    changes = e.commit()
    assert set(changes.states) == {("c1", "zone"), ("c1", "store")}
    assert changes.cursors["c1"].last_event_ts == 50
    e.rollback()
    assert (e.cursor("c1"), dict(e.inside("c1"))) == before
    assert e.sweep(10**6)[-1].reason == "stale"  # the schedule is whole again


def test_loaded_held_states_are_swept() -> None:
    e = PresenceEngine()
    e.load(
        [("c1", CustomerCursor(float("-inf"), 0.0, 0.0, last_event_ts=10))],
        [("c1", "zone", FenceState(0, 10, None, True, "beacon", False, 100, "beacon"))],
    )
    assert kinds(e.sweep(200)) == [(X, "zone", 100, "beacon", "not_heard")]


def test_bad_arguments_are_refused() -> None:
    e = PresenceEngine()
    with pytest.raises(ValueError):
        e.apply_proximity("c1", ["zone"], 0, "gps", 90)
    with pytest.raises(ValueError):
        e.apply_proximity("c1", ["zone"], 0, "beacon", 0)
    with pytest.raises(TypeError):
        e.apply_proximity("c1", "zone", 0, "beacon", 90)
    assert e.active_customers() == 0


# -- properties over mixed streams -------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    customer_id: str
    fences: tuple[str, ...]
    ts: float
    source: str
    hold_s: float


Op = Fix | Signal | float  # a float is a sweep at that wall clock


@st.composite
def mixed(draw: st.DrawFn) -> list[Fix | Signal]:
    """GPS streams (out of order, duplicated, spoofed...) with proximity signals merged in by
    time: beacons heard in bursts, NFC taps, on one fence or a zone and its store; some resent,
    some moved out of order (late)."""
    fixes = draw(streams())
    signals: list[Signal] = []
    for _ in range(draw(st.integers(0, 12))):
        at = float(draw(st.integers(0, 8000)))
        kind = draw(st.sampled_from(["beacon", "beacon", "nfc"]))
        hold = BEACON_HOLD if kind == "beacon" else NFC_HOLD
        which = tuple(draw(st.lists(st.sampled_from(sorted(FENCES)), min_size=1, max_size=2)))
        who = f"c{draw(st.integers(0, 2))}"
        for _ in range(draw(st.integers(1, 6))):  # a burst: heard again every 0-60 s
            signals.append(Signal(who, which, at, kind, hold))
            at += draw(st.sampled_from([0, 5, 30, 30, 60]))
    ops: list[Fix | Signal] = [*fixes, *signals]
    ops.sort(key=lambda o: o.ts)  # stable: the GPS streams' own disorder stays
    n = len(ops)
    if n > 1:
        for i, j in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)))):
            ops[i], ops[j] = ops[j], ops[i]
        for i, j in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n)))):
            ops.insert(max(i + 1, j), ops[i])  # a resend, after the original
    return ops


def end_of(ops: Sequence[Op]) -> float:
    return max((o.ts for o in ops if not isinstance(o, float)), default=0.0) + 10 * 86400.0


def run(engine: PresenceEngine, ops: Sequence[Op]) -> list[PresenceEvent]:
    events: list[PresenceEvent] = []
    for op in ops:
        if isinstance(op, Fix):
            events += engine.apply(op, observations(engine, op)).events
        elif isinstance(op, Signal):
            r = engine.apply_proximity(op.customer_id, op.fences, op.ts, op.source, op.hold_s)
            events += r.events
        else:
            events += engine.sweep(op)
    return events


# one stand-in fix per customer the streams use, for state_of() and Db.matches()
WHO = [fix(0, cid=f"c{i}") for i in range(3)]


def check(events: Sequence[PresenceEvent]) -> None:
    for key, evs in per_fence(events).items():
        word = "".join({"enter": "E", "dwell": "D", "exit": "X"}[e.type] for e in evs)
        assert VISITS.fullmatch(word), (key, word)
        visit_source = None
        for e in evs:
            assert e.source in ("gps", "beacon", "nfc")
            if e.type is E:
                visit_source = e.source
            elif e.type is D:
                assert e.source == visit_source  # a dwell carries its visit's source
            elif e.reason == "not_heard":
                assert e.source in ("beacon", "nfc")
            else:
                assert e.source == "gps"
    last: dict[str, float] = {}
    for e in events:
        assert e.ts >= last.get(e.customer_id, float("-inf")), e
        last[e.customer_id] = e.ts


@SETTINGS
@given(mixed(), st.data())
def test_mixed_visits_are_well_formed_in_time_order_and_all_close(
    ops: list[Fix | Signal], data: st.DataObject
) -> None:
    timed: list[Op] = list(ops)
    for _ in range(data.draw(st.integers(0, 6))):  # sweeps at any wall clock
        timed.insert(data.draw(st.integers(0, len(timed))), float(data.draw(st.integers(0, 9000))))
    engine = PresenceEngine(CONFIG)
    check(run(engine, [*timed, end_of(ops)]))
    assert engine.customers_inside() == 0


@SETTINGS
@given(mixed())
def test_no_gps_exit_while_held(ops: list[Fix | Signal]) -> None:
    """After an applied signal, that fence's next exit comes no earlier than the hold's end."""
    engine = PresenceEngine(CONFIG)
    holds: dict[tuple[str, str], float] = {}  # (customer, fence) -> hold end, of this visit
    for op in [*ops, end_of(ops)]:
        if isinstance(op, Signal):
            r = engine.apply_proximity(op.customer_id, op.fences, op.ts, op.source, op.hold_s)
            events = r.events
        elif isinstance(op, Fix):
            events = engine.apply(op, observations(engine, op)).events
        else:
            events = engine.sweep(op)
        for e in events:
            key = (e.customer_id, e.geofence_id)
            if e.type is X:
                assert e.ts >= holds.pop(key, float("-inf")), e
        if isinstance(op, Signal) and r.flag is None:
            for f in op.fences:
                key = (op.customer_id, f)
                holds[key] = max(holds.get(key, float("-inf")), op.ts + op.hold_s)


@SETTINGS
@given(mixed(), st.data())
def test_mixed_events_do_not_depend_on_when_sweep_runs(
    ops: list[Fix | Signal], data: st.DataObject
) -> None:
    where = set(data.draw(st.lists(st.integers(0, max(len(ops) - 1, 0)))))
    swept_ops: list[Op] = []
    for i, op in enumerate(ops):
        if i in where:  # no later than anything still to come
            swept_ops.append(min(o.ts for o in ops[i:]))
        swept_ops.append(op)
    a, b = PresenceEngine(CONFIG), PresenceEngine(CONFIG)
    swept = run(a, [*swept_ops, end_of(ops)])
    plain = run(b, [*ops, end_of(ops)])
    check(swept)
    assert per_fence(swept) == per_fence(plain)


@SETTINGS
@given(mixed(), st.data())
def test_mixed_failed_transactions_and_restarts_change_nothing(
    ops: list[Fix | Signal], data: st.DataObject
) -> None:
    """As for GPS alone: rolled-back batches re-applied, restarts from what was persisted (the
    new FenceState fields and signal-only cursors included) give one plain run's events."""
    timed: list[Op] = [*ops, end_of(ops)]
    reference = PresenceEngine(CONFIG)
    expected = run(reference, timed)
    engine, events = replay_with_failures(timed, data, WHO, run)
    assert events == expected
    assert state_of(engine, WHO) == state_of(reference, WHO)
