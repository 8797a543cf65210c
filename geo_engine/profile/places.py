"""Home and work areas (seed 004: "localiser le consommateur à son domicile ou sur son
trajet"): the H3 cells where a customer's fixes cluster at night and on working-day hours.

- A fix counts as *night* evidence when its local hour is in [night_start, night_end) (across
  midnight, any day), as *work* evidence when on Monday-Friday in [work_start, work_end).
  Fixes less precise than max_accuracy_m count for nothing.
- Evidence is counted in distinct hours per cell (a phone that pings every 30 s all night is one
  witness per hour, not 120), time-decayed like affinity (half-life): someone who moved house
  sees the old cell fade. Distinct days (nights for home) are counted too.
- The place is the cell with the most decayed hours; confidence = its share of the kind's
  hours x min(1, its days / min_days): one night at a friend's is not a home.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.affinity import Decay
from geofences.h3cells import latlng_to_cells

HOME, WORK = 1, 2
KIND_NAMES = {HOME: "home", WORK: "work"}
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PlacesConfig:
    resolution: int = 9  # ~0.1 km2 cells: a block, not an address
    timezone: str = "Europe/Paris"
    night_start_hour: int = 21
    night_end_hour: int = 6
    work_start_hour: int = 9
    work_end_hour: int = 17
    max_accuracy_m: float = 100.0
    min_days: int = 3
    half_life_days: float = 30.0


@dataclass(frozen=True, slots=True)
class Observed:
    """Per usable fix: its kind (HOME/WORK), cell, hour number and day (night) number."""

    index: I64  # rows of the input
    kind: NDArray[np.int8]
    cell: I64
    hour: I64
    day: I64


@dataclass(slots=True)
class CellEvidence:
    score: float  # decayed hours, at the Decay's reference time
    hours: int
    days: int
    last_hour: int  # newest hour counted: the same hour is never counted twice
    last_day: int


@dataclass(frozen=True, slots=True)
class Place:
    kind: str  # home | work
    cell: int
    confidence: float
    share: float
    hours: int
    days: int


def _utc_offset_s(hour: int, tz: ZoneInfo) -> float:
    off = datetime.fromtimestamp(hour * 3600, UTC).astimezone(tz).utcoffset()
    return 0.0 if off is None else off.total_seconds()


def local_seconds(ts: F64, tz: ZoneInfo) -> F64:
    """Local wall-clock seconds since the epoch; the zone offset looked up once per hour."""
    hours = np.floor(ts / 3600.0).astype(np.int64)
    uniq, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array([_utc_offset_s(int(h), tz) for h in uniq.tolist()], np.float64)
    return ts + offsets[inverse]


def observe(ts: F64, lat: F64, lon: F64, accuracy: F64, cfg: PlacesConfig) -> Observed:
    """Classify fixes (vectorized). NaN accuracy (unknown) is accepted."""
    local = local_seconds(ts, ZoneInfo(cfg.timezone))
    hour_of_day = (np.floor(local / 3600.0) % 24).astype(np.int64)
    local_day = np.floor(local / 86400.0).astype(np.int64)
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    if cfg.night_start_hour > cfg.night_end_hour:
        night = (hour_of_day >= cfg.night_start_hour) | (hour_of_day < cfg.night_end_hour)
    else:
        night = (hour_of_day >= cfg.night_start_hour) & (hour_of_day < cfg.night_end_hour)
    work = (weekday < 5) & (hour_of_day >= cfg.work_start_hour) & (hour_of_day < cfg.work_end_hour)
    precise = ~(accuracy > cfg.max_accuracy_m)  # NaN (unknown) passes
    kind = np.where(night, HOME, np.where(work, WORK, 0)).astype(np.int8)
    keep = np.nonzero((kind > 0) & precise)[0].astype(np.int64)
    kind = kind[keep]
    # a night belongs to the date it started on: shift by 12 h before taking the day
    night_day = np.floor((local[keep] - 43_200.0) / 86400.0).astype(np.int64)
    day = np.where(kind == HOME, night_day, local_day[keep])
    cells = latlng_to_cells(lat[keep], lon[keep], cfg.resolution)
    hour = np.floor(ts[keep] / 3600.0).astype(np.int64)
    return Observed(keep, kind, cells, hour, day)


def merge(
    evidence: dict[tuple[str, int, int], CellEvidence],
    rows: Iterable[tuple[str, int, int, int, int]],
    decay: Decay,
) -> set[tuple[str, int, int]]:
    """Fold (customer, kind, cell, hour, day) rows into `evidence` (in place); returns the keys
    changed. Rows must come in hour order per key for `last_hour` to be exact (the adapter
    reads fixes oldest first)."""
    changed: set[tuple[str, int, int]] = set()
    for cid, kind, cell, hour, day in sorted(set(rows), key=lambda r: r[3]):
        key = (cid, kind, cell)
        ev = evidence.get(key)
        if ev is None:
            ev = evidence[key] = CellEvidence(0.0, 0, 0, -1, -(2**31))
        if hour <= ev.last_hour:
            continue
        ev.score += decay.stored(1.0, hour * 3600.0 + 1800.0)
        ev.hours += 1
        ev.last_hour = hour
        if day > ev.last_day:
            ev.days += 1
            ev.last_day = day
        changed.add(key)
    return changed


def choose(cells: dict[int, CellEvidence], kind: int, min_days: int) -> Place | None:
    """The place of one customer and kind from that kind's cells."""
    total = sum(ev.score for ev in cells.values())
    if not cells or total <= 0.0:
        return None
    cell, best = max(cells.items(), key=lambda kv: (kv[1].score, kv[0]))
    share = best.score / total
    confidence = share * min(1.0, best.days / max(1, min_days))
    return Place(
        KIND_NAMES[kind], cell, round(confidence, 4), round(share, 4), best.hours, best.days
    )
