"""PostgreSQL's binary COPY format, built from numpy columns: no Python object per row.

    header: PGCOPY\\n\\377\\r\\n\\0, int32 flags 0, int32 extension length 0
    each row: int16 field count, then per field int32 byte length (-1: NULL) and the bytes
    trailer: int16 -1

all big-endian. Rows differ in length (text, NULLs), but COPY takes rows in any order: rows are
grouped by their shape (every field's length), and each group is one numpy structured array
whose fields are assigned column by column. A batch has a handful of shapes (ids of one or two
lengths, the columns a client sends or not), so the cost is a few array copies per column.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from geo_engine.presence_raw import RawFixColumns

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_S = 946_684_800  # 2000-01-01 UTC, where timestamptz counts microseconds from
U8 = NDArray[np.uint8]
I32 = NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Field:
    """One column's values for every row and each row's byte length (-1: NULL).

    `width` set: `data` holds `width` bytes for every row, NULL or not (a NULL's are unused);
    None (text): every non-NULL value's bytes end to end."""

    data: U8
    lengths: I32
    width: int | None


def fixed(values: NDArray[np.generic], big_endian: str) -> Field:
    """A column of a fixed-size type, none NULL (`big_endian`: its numpy type, e.g. '>f8')."""
    be = np.ascontiguousarray(values, dtype=big_endian)
    w = be.dtype.itemsize
    return Field(be.view(np.uint8), np.full(len(be), w, np.int32), w)


def float8(values: NDArray[np.float64]) -> Field:
    """float8, NaN as NULL (what an unknown accuracy, speed or heading is)."""
    f = fixed(values, ">f8")
    return Field(f.data, np.where(np.isnan(values), -1, 8).astype(np.int32), 8)


def float8_list(values: list[float | None]) -> Field:
    """float8 from Python floats, None as NULL: `struct` packs them big-endian in one call, a
    tenth of what building a numpy array from the list costs (columns of objects' fields)."""
    n = len(values)
    nulls = values.count(None)
    if nulls == n:
        return Field(np.empty(0, np.uint8), np.full(n, -1, np.int32), 8)
    if nulls:
        lengths = np.array([-1 if v is None else 8 for v in values], np.int32)
        values = [math.nan if v is None else v for v in values]
    else:
        lengths = np.full(n, 8, np.int32)
    return Field(np.frombuffer(struct.pack(f">{n}d", *values), np.uint8), lengths, 8)


def timestamptz(unix_s: NDArray[np.float64]) -> Field:
    """Unix seconds as timestamptz, rounded to the microsecond as `datetime.fromtimestamp`
    rounds them (half to even on the fraction), so a fix stores the same instant either way."""
    whole = np.trunc(unix_s)
    micros = (whole.astype(np.int64) - _PG_EPOCH_S) * 1_000_000
    micros += np.round((unix_s - whole) * 1e6).astype(np.int64)
    return fixed(micros, ">i8")


def boolean(values: NDArray[np.bool_]) -> Field:
    return fixed(values.astype(np.uint8), "u1")


def text(values: Sequence[str | None]) -> Field:
    """utf-8 text, None as NULL. An all-ASCII column (ids, flags) is encoded in one call; only
    a column with another character is encoded value by value."""
    n = len(values)
    lengths = np.full(n, -1, np.int32)
    nulls = values.count(None) if isinstance(values, list) else sum(v is None for v in values)
    if nulls == n:  # a column of NULLs (no fix flagged): no bytes at all
        return Field(np.empty(0, np.uint8), lengths, None)
    known: NDArray[np.bool_] | None = None
    strs = cast(list[str], values)
    if nulls:
        objs = np.asarray(values, dtype=object)
        known = objs != None  # noqa: E711 (elementwise: which values are not NULL)
        strs = objs[known].tolist()
    joined = "".join(strs)
    if joined.isascii():
        data = joined.encode("ascii")
        sizes = np.fromiter(map(len, strs), np.int32, len(strs))
    else:
        encoded = [s.encode() for s in strs]
        data = b"".join(encoded)
        sizes = np.fromiter(map(len, encoded), np.int32, len(strs))
    if known is None:
        lengths = sizes
    else:
        lengths[known] = sizes
    return Field(np.frombuffer(data, np.uint8), lengths, None)


def copy_payload(fields: Sequence[Field], rows: int) -> memoryview:
    """The whole binary COPY stream for these columns (in COPY's column order), rows grouped
    by shape. A memoryview: asyncpg takes bytes for a file's path, a buffer for the data."""
    parts = [HEADER]
    if rows:
        lengths = np.stack([f.lengths for f in fields], axis=1)
        starts = [_text_starts(f) for f in fields]
        for idx in _shapes(lengths):
            parts.append(_group(fields, starts, lengths[idx[0]].tolist(), idx))
    parts.append(TRAILER)
    return memoryview(b"".join(parts))


def _text_starts(f: Field) -> NDArray[np.int64] | None:
    """Where each row's bytes begin in a text field's data."""
    if f.width is not None:
        return None
    present = np.maximum(f.lengths, 0).astype(np.int64)
    return np.cumsum(present) - present


def _shapes(lengths: I32) -> list[NDArray[np.intp]]:
    """The rows of each distinct shape (row of field lengths)."""
    varying = [k for k in range(lengths.shape[1]) if (lengths[:, k] != lengths[0, k]).any()]
    if not varying:
        return [np.arange(len(lengths))]
    keys = lengths[:, varying]
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    cuts = np.flatnonzero((ordered[1:] != ordered[:-1]).any(axis=1)) + 1
    return np.split(order, cuts)


def _group(
    fields: Sequence[Field],
    starts: Sequence[NDArray[np.int64] | None],
    shape: list[int],
    idx: NDArray[np.intp],
) -> bytes:
    """Rows of one shape as one structured array: each field's length, then its bytes."""
    layout: list[tuple[str, str]] = [("n", ">i2")]
    for k, length in enumerate(shape):
        layout.append((f"l{k}", ">i4"))
        if length > 0:
            layout.append((f"d{k}", f"V{length}"))
    rec = np.empty(len(idx), np.dtype(layout))
    rec["n"] = len(fields)
    for k, (f, length, at) in enumerate(zip(fields, shape, starts, strict=True)):
        rec[f"l{k}"] = length
        if length <= 0:
            continue
        if f.width is not None:  # every row's bytes at a fixed stride: one gather of values
            rec[f"d{k}"] = f.data.view(f"V{f.width}")[idx]
        else:
            assert at is not None
            pick = at[idx][:, None] + np.arange(length)
            rec[f"d{k}"] = np.ascontiguousarray(f.data[pick]).view(f"V{length}").ravel()
    return rec.tobytes()


RAW_FIX_COLUMNS = (
    "customer_id",
    "device_id",
    "ts",
    "lat",
    "lon",
    "accuracy_m",
    "speed_mps",
    "heading",
    "mock",
    "flag",
)


def raw_fixes_copy(fixes: RawFixColumns) -> memoryview:
    """raw_fixes rows (RAW_FIX_COLUMNS, in that order) as one binary COPY stream."""
    fields = [
        text(fixes.customer_ids),
        text(fixes.device_ids),
        timestamptz(fixes.ts),
        fixed(fixes.lat, ">f8"),
        fixed(fixes.lon, ">f8"),
        float8(fixes.accuracy_m),
        float8(fixes.speed_mps),
        float8(fixes.heading),
        boolean(fixes.mock),
        text(fixes.flags),
    ]
    return copy_payload(fields, len(fixes))
