"""The bulk path of a batch (geo_engine/presence_bulk.py) changes nothing but speed: random
batches applied in bulk and one fix at a time give the same flags, events, state and changes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_engine.batch import FixBatch
from geo_engine.models import CustomerCursor, PresenceConfig
from geo_engine.pipeline import run_batch
from geo_engine.presence import PresenceEngine
from geofences.index import FenceIndex
from geofences.model import FenceKind, Geofence

LAT0, LON0 = 48.85, 2.35
M = 111_195.0
CONFIG = PresenceConfig(dwell_after_s=300, exit_after_s=180, stale_exit_after_s=3600)
INDEX = FenceIndex.build(
    [
        Geofence(
            f"f{i}",
            "shop",
            FenceKind.STORE,
            f"s{i}",
            {"type": "Point", "coordinates": [LON0 + i * 0.01, LAT0]},
            None,
            40.0,
        )
        for i in range(2)
    ]
)
# metres north of a fence's centre (its radius is 40 m); far jumps are spoofed or trains
SPOTS = [0.0, 20.0, 38.0, 45.0, 60.0, 300.0, 2_000.0, 80_000.0]
ACCURACY = [math.nan, 0.0, 5.0, 10.0, 30.0, 150.0]
Row = tuple[int, float, float, float, float, bool]  # customer, ts, lat, lon, accuracy, mock


@st.composite
def batches(draw: st.DrawFn) -> list[list[Row]]:
    """Batches of rows (customer, ts, lat, lon, accuracy, mock): a few customers near two
    fences, times that repeat, go back and jump ahead, some customers with several fixes."""
    out = []
    t = 1_000.0
    for _ in range(draw(st.integers(1, 6))):
        rows = []
        for _ in range(draw(st.integers(1, 40))):
            t += draw(st.sampled_from([0.0, 1.0, 5.0, 30.0, 120.0, 600.0, -20.0]))
            late = draw(st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 30.0]))  # a fix sent late
            fence = draw(st.integers(0, 1))
            north = draw(st.sampled_from(SPOTS))
            rows.append((
                draw(st.integers(0, 11)),
                t - late,
                LAT0 + north / M,
                LON0 + fence * 0.01,
                draw(st.sampled_from(ACCURACY)),
                draw(st.integers(0, 15)) == 0,
            ))  # fmt: skip
        out.append(rows)
    return out


def batch_of(rows: list[Row]) -> FixBatch:
    cols = list(zip(*rows, strict=True))
    f = np.asarray
    return FixBatch([f"c{c}" for c in cols[0]], f(cols[1]), f(cols[2]), f(cols[3]), f(cols[4]),
                    f(cols[5], np.bool_), np.full(len(rows), np.nan))  # fmt: skip


def engine() -> PresenceEngine:
    e = PresenceEngine(CONFIG)
    # known from proximity signals only, and a cursor with an event time ahead of it
    proximity_only = CustomerCursor(-math.inf, 0.0, 0.0, last_event_ts=1_200.0)
    event_ahead = CustomerCursor(900.0, LAT0, LON0, 10.0, last_event_ts=1_500.0)
    e.load([("c10", proximity_only), ("c11", event_ahead)], [])
    return e


def snapshot(e: PresenceEngine) -> tuple[object, ...]:
    cids = sorted(e.customers())
    return tuple((c, e.cursor(c), dict(e.inside(c))) for c in cids)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_bulk_and_one_by_one_agree(
    stream: list[list[Row]],
) -> None:
    bulk, single = engine(), engine()
    for rows in stream:
        b = batch_of(rows)
        outcomes = []
        for e, mode in ((bulk, True), (single, False)):
            e.begin()
            out = run_batch(b, INDEX, e, bulk=mode)
            outcomes.append((out.flags, out.events, e.commit()))
        assert outcomes[0] == outcomes[1]
        assert snapshot(bulk) == snapshot(single)
    bulk.rollback()  # the last batch undone alike
    single.rollback()
    assert snapshot(bulk) == snapshot(single)


def test_most_rows_of_a_city_batch_take_the_bulk_path() -> None:
    """Customers far from every fence, one fix each: no row needs the per-fix machine."""
    e = engine()
    rows = [(i % 10, 2_000.0 + i, LAT0 + 0.02 + i * 1e-5, LON0, 10.0, False) for i in range(10)]
    run_batch(batch_of(rows), INDEX, e)
    from geo_engine.presence_bulk import settle_plain

    later = [(c, t + 30.0, la, lo, a, m) for c, t, la, lo, a, m in rows]
    done, flags = settle_plain(e, batch_of(later), np.zeros(10, np.bool_))
    assert done.all() and flags == [None] * 10


def test_customers_with_several_fixes_walking_take_the_bulk_path() -> None:
    """A run of several requests holds several fixes per customer: walking ones, all plausible,
    are settled in bulk and the cursor is the newest fix; one impossible jump sends only that
    customer to the per-fix machine."""
    from geo_engine.presence_bulk import settle_plain

    e = engine()
    rows = [(c, 2_000.0, LAT0 + 0.02, LON0, 10.0, False) for c in range(3)]
    run_batch(batch_of(rows), INDEX, e)
    # three fixes each, out of order in the batch; c2's middle fix is 50 km away
    later = [
        (c, 2_000.0 + 30.0 * k, LAT0 + 0.02 + k * 1e-4 + (0.5 if (c, k) == (2, 2) else 0.0),
         LON0, 10.0, False)
        for k in (3, 1, 2) for c in range(3)
    ]  # fmt: skip
    e.begin()
    done, flags = settle_plain(e, batch_of(later), np.zeros(len(later), np.bool_))
    assert flags == [None] * len(later)
    assert done.tolist() == [c != 2 for _ in (3, 1, 2) for c in range(3)]
    assert e.cursor("c0") == CustomerCursor(2_090.0, LAT0 + 0.02 + 3e-4, LON0, 10.0)
    assert e.cursor("c2") == CustomerCursor(2_000.0, LAT0 + 0.02, LON0, 10.0)  # not moved here
    assert set(e.commit().cursors) == {"c0", "c1"}


def test_a_retried_upload_is_settled_in_bulk() -> None:
    """The same fixes sent again (a client retrying, a replayed log): each customer's newest is
    a duplicate and the others late, with no fix through the per-fix machine."""
    from geo_engine.presence_bulk import settle_plain

    e = engine()
    rows = [(c, 2_000.0 + 30.0 * k, LAT0 + 0.02 + k * 1e-4, LON0, 10.0, False)
            for k in (2, 0, 1) for c in range(3)]  # fmt: skip
    run_batch(batch_of(rows), INDEX, e)
    before = snapshot(e)
    done, flags = settle_plain(e, batch_of(rows), np.zeros(len(rows), np.bool_))
    assert done.all()
    assert [str(f) for f in flags] == ["duplicate"] * 3 + ["late"] * 6
    assert snapshot(e) == before


def test_late_duplicate_and_impossible_fixes_are_flagged_alike_in_bulk() -> None:
    flags = []
    for mode in (True, False):
        e = engine()
        # c1 with a poor accuracy: its late fix is within its speed budget all the same
        start = [
            (c, 1_000.0, LAT0 + 0.02, LON0, 150.0 if c == 1 else 10.0, False) for c in (1, 2, 3)
        ]
        run_batch(batch_of(start), INDEX, e, bulk=mode)
        later = [
            (1, 999.5, LAT0 + 0.02, LON0, 150.0, False),  # half a second before the cursor
            (2, 1_000.0, LAT0 + 0.02, LON0, 10.0, False),  # the same time again
            (3, 1_030.0, LAT0 + 0.5, LON0, 10.0, False),  # 55 km in 30 s
            (4, 1_030.0, LAT0 + 0.02, LON0, math.nan, False),  # a new customer
            (5, 1_030.0, LAT0 + 0.02, LON0, 10.0, True),  # mocked
        ]
        e.begin()
        flags.append(run_batch(batch_of(later), INDEX, e, bulk=mode).flags)
        e.commit()
    assert flags[0] == flags[1]
    assert [str(f) if f else None for f in flags[0]] == [
        "late", "duplicate", "impossible_speed", None, "mock"
    ]  # fmt: skip
