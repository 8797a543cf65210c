"""Fixes as columns (the log's wire form) and the ping decoder's one-pass path."""

from __future__ import annotations

import json
import math
import time

import numpy as np

from adapters.bus.pull import Delivered
from adapters.cluster import commands as c
from adapters.cluster.consume import _runs
from adapters.codecs.fix_columns import Fixes, concat, fixes_by_part, fixes_of, optional
from adapters.codecs.pings import _row_by_row, decode_pings

NOW = time.time()
LIMITS = {"max_batch": 5000, "now": NOW, "max_future_s": 300.0, "max_age_s": 86400.0}


def _body(rows: list[dict[str, object]]) -> bytes:
    return json.dumps({"pings": rows}).encode()


ROWS: list[dict[str, object]] = [
    {"customer_id": "a", "lat": 48.85, "lon": 2.35, "ts": NOW - 60, "accuracy_m": 9.5},
    {"device_id": "d1", "lat": 48.86, "lon": 2.36, "ts": NOW - 50, "mock": True},
    {"customer_id": "b", "lat": 48.87, "lon": 2.37, "ts": NOW - 40, "speed_mps": 1.5,
     "heading": 270.0},
]  # fmt: skip


def test_a_good_batch_decodes_in_one_pass_as_the_row_by_row_path_does() -> None:
    body = _body(ROWS)
    fast = decode_pings(body, **LIMITS)
    slow = _row_by_row(body, LIMITS["max_batch"], NOW, 300.0, 86400.0)
    assert fast.rows == slow.rows and not fast.errors and not slow.errors
    # the fast path's are arrays, the slow path's lists: the same values
    assert list(fast.row_index) == slow.row_index == [0, 1, 2]
    assert list(fast.ts) == slow.ts


def test_one_bad_row_falls_back_and_names_it_while_the_others_go_through() -> None:
    rows = [*ROWS, {"customer_id": "nul\u0000", "lat": 1, "lon": 2, "ts": NOW - 1}]
    rows.append({"customer_id": "c", "lat": 1, "lon": 2, "ts": "2026-01-01T10:00:00"})
    d = decode_pings(_body(rows), **LIMITS)
    assert [r.index for r in d.errors] == [3, 4]
    assert d.errors[0].field == "customer_id" and "NUL" in d.errors[0].reason
    assert d.errors[1].field == "ts" and "offset" in d.errors[1].reason
    assert d.row_index == [0, 1, 2]


def test_columns_survive_the_wire_split_and_merge() -> None:
    d = decode_pings(_body(ROWS), **LIMITS)
    fixes = fixes_of(d, ["a", "device:d1", "b"])
    back = c.decode_command(c.encode(fixes))
    assert isinstance(back, Fixes) and back == fixes
    assert optional(back.floats("accuracy_m")) == [9.5, None, None]
    assert optional(back.floats("heading")) == [None, None, 270.0]
    assert back.mocks().tolist() == [False, True, False]
    part = back.take(np.array([2, 0]))
    assert part.customer_ids == ["b", "a"] and part.indexes().tolist() == [2, 0]
    merged = concat([part, back.take(np.array([1]))])
    assert merged.customer_ids == ["b", "a", "device:d1"]
    assert merged.device_ids == [None, None, "d1"]
    assert merged.floats("ts").tolist() == [NOW - 40, NOW - 60, NOW - 50]
    batch = merged.batch()
    assert math.isnan(batch.speed_mps[1]) and batch.speed_mps[0] == 1.5


def test_a_request_splits_by_partition_as_gathering_each_partitions_rows_would() -> None:
    rng = np.random.default_rng(3)
    rows = [
        {**ROWS[i % 3], "customer_id": f"c{i}", "lat": 48 + rng.random(), "ts": NOW - 100 + i}
        for i in range(200)
    ]
    d = decode_pings(_body(rows), **LIMITS)
    cids = [f"c{i}" for i in range(200)]
    parts = rng.integers(0, 7, 200).astype(np.int32)
    whole = fixes_of(d, cids)
    split = fixes_by_part(d, cids, parts)
    assert sorted(split) == sorted(set(parts.tolist()))
    for p, got in split.items():
        assert got == whole.take(np.flatnonzero(parts == p))  # request order kept in each
    one = fixes_by_part(d, cids, np.full(200, 4, np.int32))
    assert one == {4: whole}
    assert fixes_by_part(decode_pings(_body([]), **LIMITS), [], np.array([], np.int32)) == {}


def test_only_consecutive_unawaited_fix_batches_are_grouped() -> None:
    fixes = c.encode(fixes_of(decode_pings(_body(ROWS), **LIMITS), ["a", "b", "c"]))
    erase = c.encode(c.Erase("a"))

    def d(seq: int, data: bytes, reply: str | None = None) -> Delivered:
        return Delivered(seq, data, reply, 0, None)  # type: ignore[arg-type]

    batch = [d(1, fixes), d(2, fixes), d(3, fixes, "inbox"), d(4, fixes), d(5, erase),
             d(6, fixes), d(7, fixes), d(8, b"\xc1not msgpack")]  # fmt: skip
    runs = [[x.seq for x, _ in run] for run in _runs(batch)]
    assert runs == [[1, 2], [3], [4], [5], [6, 7], [8]]
    assert isinstance(_runs(batch)[-1][0][1], Exception)  # parked when applied, not dropped
    # a run holds at most max_fixes fixes (3 a command here): a backlog is applied in pieces
    many = [d(i, fixes) for i in range(1, 8)]
    assert [[x.seq for x, _ in run] for run in _runs(many, max_fixes=6)] == [
        [1, 2], [3, 4], [5, 6], [7]
    ]  # fmt: skip
    assert len(_runs(many, max_fixes=2)) == 7  # a command larger than the bound stays whole
