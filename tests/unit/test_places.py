"""Home and work: night and working-day hours in local time (DST included), one witness per
hour, days needed for confidence, and an old home fading after a move."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import h3
import numpy as np

from geo_engine.profile.affinity import Decay
from geo_engine.profile.places import (
    HOME,
    WORK,
    CellEvidence,
    PlacesConfig,
    choose,
    local_seconds,
    merge,
    observe,
)

PARIS = ZoneInfo("Europe/Paris")
CFG = PlacesConfig()
HOME_LL = (48.8674, 2.3636)
OFFICE_LL = (48.8918, 2.2390)


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> float:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS).timestamp()


def obs(times: list[float], where: tuple[float, float]) -> tuple:  # type: ignore[type-arg]
    n = len(times)
    return observe(
        np.asarray(times, np.float64),
        np.full(n, where[0]),
        np.full(n, where[1]),
        np.full(n, 10.0),
        CFG,
    )


def test_local_time_follows_daylight_saving() -> None:
    winter, summer = at(2026, 1, 15, 22), at(2026, 7, 15, 22)
    local = local_seconds(np.array([winter, summer]), PARIS)
    assert ((local % 86400) / 3600).tolist() == [22.0, 22.0]


def test_night_and_weekday_hours_are_classified() -> None:
    # Thursday 2026-01-15: 23:00 night, 03:00 night, 10:00 work, 18:00 nothing;
    # Saturday 10:00 nothing; a fix less precise than 100 m counts for nothing
    times = [at(2026, 1, 15, 23), at(2026, 1, 15, 3), at(2026, 1, 15, 10), at(2026, 1, 15, 18)]
    times.append(at(2026, 1, 17, 10))
    o = obs(times, HOME_LL)
    assert o.index.tolist() == [0, 1, 2] and o.kind.tolist() == [HOME, HOME, WORK]
    # 23:00 on the 15th and 03:00 on the 15th are different nights (the 15th's, the 14th's)
    assert o.day[0] - o.day[1] == 1
    assert o.cell[0] == h3.str_to_int(h3.latlng_to_cell(*HOME_LL, 9))
    vague = observe(np.array([times[0]]), np.array([1.0]), np.array([1.0]), np.array([500.0]), CFG)
    assert vague.index.size == 0


def _rows(cid: str, o) -> list[tuple[str, int, int, int, int]]:  # type: ignore[no-untyped-def]
    return [
        (cid, int(k), int(c), int(h), int(d))
        for k, c, h, d in zip(o.kind, o.cell, o.hour, o.day, strict=True)
    ]


def test_home_needs_days_and_counts_hours_once() -> None:
    ev: dict[tuple[str, int, int], CellEvidence] = {}
    decay = Decay(CFG.half_life_days, 0.0)
    # one night: a fix every 5 minutes from 22:00 to 02:00 = 4 distinct hours
    night = [at(2026, 1, 15, 22) + i * 300 for i in range(48)]
    merge(ev, _rows("a", obs(night, HOME_LL)), decay)
    cells = {k[2]: v for k, v in ev.items() if k[1] == HOME}
    place = choose(cells, HOME, CFG.min_days)
    assert place is not None and place.hours == 4 and place.days == 1
    assert place.confidence == round(1 / 3, 4)  # one night of the three wanted
    merge(ev, _rows("a", obs(night, HOME_LL)), decay)  # the same fixes again: nothing new
    assert choose(cells, HOME, CFG.min_days).hours == 4  # type: ignore[union-attr]
    for d in (16, 17):
        merge(ev, _rows("a", obs([at(2026, 1, d, 23)], HOME_LL)), decay)
    place = choose(cells, HOME, CFG.min_days)
    assert place is not None and place.days == 3 and place.confidence == 1.0


def test_a_new_home_takes_over_as_the_old_fades() -> None:
    ev: dict[tuple[str, int, int], CellEvidence] = {}
    decay = Decay(CFG.half_life_days, 0.0)
    old = [at(2026, 1, d, 23) for d in range(1, 21)]  # 20 nights in January
    new = [at(2026, 5, d, 23) for d in range(1, 16)]  # 15 nights in May
    merge(ev, _rows("a", obs(old, HOME_LL)), decay)
    merge(ev, _rows("a", obs(new, OFFICE_LL)), decay)
    cells = {k[2]: v for k, v in ev.items() if k[1] == HOME}
    place = choose(cells, HOME, CFG.min_days)
    assert place is not None
    assert place.cell == h3.str_to_int(h3.latlng_to_cell(*OFFICE_LL, 9))
    assert place.share > 0.9  # January's nights weigh ~1/16 of May's
