"""Merging two identities' presence (geo_engine/identity.py)."""

from __future__ import annotations

from geo_engine.identity import merge_presence
from geo_engine.models import CustomerCursor, FenceState


def cur(ts: float, lev: float | None = None) -> CustomerCursor:
    return CustomerCursor(last_ts=ts, last_lat=48.0, last_lon=2.0, last_event_ts=lev)


def test_newest_cursor_wins_and_keeps_the_latest_event_time() -> None:
    m = merge_presence("c", (cur(100, lev=150), {}), "device:d", (cur(120), {}))
    assert m.cursor is not None
    assert m.cursor.last_ts == 120 and m.cursor.last_event_ts == 150
    assert merge_presence("c", (None, {}), "d", (cur(5), {})).cursor == cur(5)
    assert merge_presence("c", (None, {}), "d", (None, {})).cursor is None


def test_disjoint_fences_are_kept_as_they_are() -> None:
    a = {"f1": FenceState(10, 20)}
    b = {"f2": FenceState(30, 40, dwell_fired=True)}
    m = merge_presence("c", (cur(20), a), "d", (cur(40), b))
    assert m.states == {**a, **b}
    assert m.superseded == {}


def test_a_fence_both_are_inside_keeps_the_earlier_visit() -> None:
    early = FenceState(entered_at=10, last_inside_at=50, outside_since=55)
    late = FenceState(entered_at=30, last_inside_at=70, dwell_fired=True)
    m = merge_presence("c", (cur(60), {"f": early}), "d", (cur(70), {"f": late}))
    assert m.superseded == {"f": ("d", 30)}
    kept = m.states["f"]
    assert kept.entered_at == 10
    assert kept.last_inside_at == 70
    assert kept.outside_since is None  # the other phone saw the customer inside at 70
    assert kept.dwell_fired is False  # the dropped visit's dwell does not carry over
    m2 = merge_presence("c", (cur(70), {"f": late}), "d", (cur(60), {"f": early}))
    assert m2.superseded == {"f": ("c", 30)}
    assert m2.states["f"].entered_at == 10


def test_gps_confirmation_and_the_longest_hold_carry_over() -> None:
    by_beacon = FenceState(
        10, 40, source="beacon", gps_confirmed=False, held_until=130, held_by="beacon"
    )
    by_gps = FenceState(20, 30, gps_confirmed=True)
    kept = merge_presence("c", (None, {"f": by_beacon}), "d", (None, {"f": by_gps})).states["f"]
    assert (kept.entered_at, kept.source) == (10, "beacon")
    assert kept.gps_confirmed is True  # the other phone's GPS confirmed the visit
    assert (kept.held_until, kept.held_by) == (130, "beacon")
    nfc = FenceState(25, 25, source="nfc", gps_confirmed=False, held_until=400, held_by="nfc")
    kept = merge_presence("c", (None, {"f": by_beacon}), "d", (None, {"f": nfc})).states["f"]
    assert (kept.held_until, kept.held_by, kept.gps_confirmed) == (400, "nfc", False)
