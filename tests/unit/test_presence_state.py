"""Presence transactions (geo_engine/presence_state.py): rollback restores exactly, commit reports
only what changed, misuse raises."""

from __future__ import annotations

import pytest

from geo_engine.models import CustomerCursor, FenceState
from geo_engine.presence import PresenceEngine
from tests.unit.test_presence import LAT0, LON0, D, X, fix, kinds, ob, snapshot


def busy_tx(e: PresenceEngine) -> None:
    """Touch everything a batch can: cursors, enters, dwell, exits, suspects, drop, sweep."""
    e.apply(fix(1000), ob(40.0))  # c1 refresh of f1 -> dwell
    e.apply(fix(1000, cid="c2"), ob(50.0, "f2"))  # c2 enters
    e.apply(fix(1010, cid="c2", north_m=90_000), [])  # c2 suspect
    e.apply(fix(1020), ob(-100.0))  # c1 exits f1
    e.apply(fix(1000, cid="c3"), ob(50.0))  # a new customer
    e.drop_fence("f3")
    e.sweep(10**6)


def loaded() -> PresenceEngine:
    e = PresenceEngine()
    e.load(
        [
            ("c1", CustomerCursor(500, LAT0, LON0, 10.0)),
            ("c2", CustomerCursor(500, LAT0, LON0, None)),
            ("c4", CustomerCursor(500, LAT0, LON0, None)),
        ],
        [("c1", "f1", FenceState(400, 500)), ("c1", "f3", FenceState(400, 500))],
    )
    return e


CIDS = ("c1", "c2", "c3", "c4")


def test_rollback_restores_exactly() -> None:
    e = loaded()
    before = snapshot(e, CIDS)
    e.begin()
    busy_tx(e)
    assert snapshot(e, CIDS) != before
    e.rollback()
    assert snapshot(e, CIDS) == before
    assert e.customers_inside() == 1 and e.active_customers() == 3
    # the schedule survived: the sweep in the rolled-back transaction consumed these deadlines
    assert kinds(e.sweep(10**6)) == [
        (D, "f1", 700, None),
        (D, "f3", 700, None),
        (X, "f1", 500 + 4 * 3600, "stale"),
        (X, "f3", 500 + 4 * 3600, "stale"),
    ]


def test_rollback_after_commit_undoes_the_committed_batch() -> None:
    """The pipeline takes Changes from commit(), then the database refuses them."""
    e = loaded()
    before = snapshot(e, CIDS)
    e.begin()
    busy_tx(e)
    e.commit()
    e.rollback()
    assert snapshot(e, CIDS) == before
    e.rollback()  # nothing left to undo: no-op
    assert snapshot(e, CIDS) == before


def test_a_change_outside_a_transaction_ends_the_undo_window() -> None:
    e = loaded()
    e.begin()
    e.apply(fix(1000, cid="c2"), ob(50.0))
    e.commit()
    e.apply(fix(1010, cid="c4"), [])  # no transaction
    e.rollback()  # can no longer restore exactly: does nothing
    assert e.is_inside_any("c2")


def test_commit_returns_only_changed_keys_with_current_values() -> None:
    e = loaded()
    e.begin()
    e.apply(fix(1000), ob(40.0))  # c1: cursor, f1 refreshed (+dwell); f3 not observed
    e.apply(fix(1000, cid="c2"), ob(50.0, "f2"))
    e.apply(fix(400, cid="c4"), ob(50.0))  # late: nothing changes
    e.apply(fix(1000, cid="c4", mock=True), ob(50.0))  # mock: nothing changes
    changes = e.commit()
    assert set(changes.cursors) == {"c1", "c2"}
    assert changes.cursors["c1"] == e.cursor("c1")
    assert changes.states == {
        ("c1", "f1"): e.inside("c1")["f1"],
        ("c2", "f2"): FenceState(1000, 1000),
    }
    assert changes.states[("c1", "f1")] == FenceState(400, 1000, None, True)
    e.begin()
    assert e.commit().cursors == {}


def test_changes_hold_values_as_of_commit() -> None:
    e = PresenceEngine()
    e.begin()
    e.apply(fix(0), ob(50.0))
    changes = e.commit()
    e.apply(fix(10), ob(-100.0))
    assert changes.states[("c1", "f1")] == FenceState(0, 0)
    assert changes.cursors["c1"].last_ts == 0


def test_transaction_misuse_raises() -> None:
    e = PresenceEngine()
    with pytest.raises(RuntimeError):
        e.commit()
    e.begin()
    with pytest.raises(RuntimeError):
        e.begin()
    with pytest.raises(RuntimeError):
        e.load([], [])
    e.rollback()
    e.begin()
    e.commit()
