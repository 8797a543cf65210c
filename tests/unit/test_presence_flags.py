"""Presence rules for fixes that must change nothing: duplicates, late and mock fixes, and
impossible speed (spoofed jumps) with its re-anchoring (geo_engine/presence.py, rules 1-4)."""

from __future__ import annotations

from geo_engine.models import FixFlag
from geo_engine.presence import PresenceEngine
from tests.unit.test_presence import E, entered, fix, kinds, ob, snapshot


def test_duplicates_and_late_fixes_change_nothing() -> None:
    e = entered(PresenceEngine())
    e.apply(fix(100), ob(40.0))
    before = snapshot(e)
    for f, obs, flag in [
        (fix(100), ob(-500.0), FixFlag.DUPLICATE),
        (fix(100, north_m=3), ob(40.0), FixFlag.DUPLICATE),
        (fix(50), ob(-500.0), FixFlag.LATE),
        (fix(99.9), ob(40.0), FixFlag.LATE),
    ]:
        r = e.apply(f, obs)
        assert r.events == [] and r.flag is flag
        assert snapshot(e) == before


def test_mock_fix_is_ignored() -> None:
    e = PresenceEngine()
    r = e.apply(fix(0, mock=True), ob(500.0))
    assert r.events == [] and r.flag is FixFlag.MOCK
    assert e.cursor("c1") is None and not e.is_inside_any("c1")
    entered(e, 10)
    before = snapshot(e)
    assert e.apply(fix(20, mock=True), ob(-500.0)).flag is FixFlag.MOCK
    assert snapshot(e) == before


def test_spoofed_jump_is_ignored_and_a_real_fix_clears_it() -> None:
    e = PresenceEngine()
    e.apply(fix(0), [])
    r = e.apply(fix(10, north_m=10_000), ob(50.0, "far"))  # 1 km/s
    assert r.events == [] and r.flag is FixFlag.IMPOSSIBLE_SPEED
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == 0 and cur.suspect_count == 1
    assert not e.is_inside_any("c1")
    r = e.apply(fix(20, north_m=5), ob(50.0))
    assert kinds(r.events) == [(E, "f1", 20, None)]
    cur = e.cursor("c1")
    assert cur is not None and cur.suspect_ts is None and cur.suspect_count == 0


def test_speed_allows_for_both_accuracies() -> None:
    e = PresenceEngine()
    e.apply(fix(0, acc=200.0), [])
    # 1 090 m in 10 s: (1090 - 200 - 200) / 10 = 69 m/s
    assert e.apply(fix(10, north_m=1090, acc=200.0), []).flag is None
    e2 = PresenceEngine()
    e2.apply(fix(0, acc=5.0), [])
    assert e2.apply(fix(10, north_m=1090, acc=5.0), []).flag is FixFlag.IMPOSSIBLE_SPEED


def test_reanchor_after_consistent_fast_fixes() -> None:
    """A train: three fixes far from the cursor but consistent with each other."""
    e = PresenceEngine()
    e.apply(fix(0), [])
    far = 50_000.0
    r1 = e.apply(fix(100, north_m=far), ob(50.0))
    r2 = e.apply(fix(110, north_m=far + 300), ob(50.0))
    assert r1.flag is r2.flag is FixFlag.IMPOSSIBLE_SPEED and not e.is_inside_any("c1")
    r3 = e.apply(fix(120, north_m=far + 600), ob(50.0))
    assert r3.flag is None and kinds(r3.events) == [(E, "f1", 120, None)]
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == 120 and cur.suspect_ts is None
    # the original position is now the implausible one
    assert e.apply(fix(130), []).flag is FixFlag.IMPOSSIBLE_SPEED


def test_inconsistent_fast_fixes_never_reanchor() -> None:
    e = PresenceEngine()
    e.apply(fix(0), [])
    for i in range(1, 20):
        north = 50_000.0 * (1 if i % 2 else -1)  # jumping around
        r = e.apply(fix(10.0 * i, north_m=north), ob(50.0))
        assert r.flag is FixFlag.IMPOSSIBLE_SPEED
    assert not e.is_inside_any("c1")
    cur = e.cursor("c1")
    assert cur is not None and cur.last_ts == 0 and cur.suspect_count == 1


def test_a_duplicate_of_a_suspect_does_not_extend_the_run() -> None:
    e = PresenceEngine()
    e.apply(fix(0), [])
    e.apply(fix(100, north_m=50_000), [])
    before = snapshot(e)
    assert e.apply(fix(100, north_m=50_000), []).flag is FixFlag.DUPLICATE
    assert e.apply(fix(50), []).flag is FixFlag.LATE  # older than the suspect
    assert snapshot(e) == before
