"""The wall clock of a time zone at a unix time, as `datetime.fromtimestamp(t, zone)` shows it,
without a zone conversion per call: every decision's context facts read the local hour and day.

Per zone, the latest local day whose UTC offset does not change is kept as a span [lo, hi) of
unix seconds: inside it the wall clock is `t - lo` seconds past local midnight. On a day the
offset changes (daylight saving) the local hour is kept instead, or nothing; outside the span,
and for a time `datetime` rounds up to the next second, `datetime` answers (and the span moves)."""

from __future__ import annotations

import math
from datetime import date, datetime

from geo_engine.decision.rules import tz_of

# local date, hour, minute, second (whole, as datetime shows it), weekday (0 = Monday)
Clock = tuple[date, int, int, int, int]

_HOUR_S = 3600
_DAY_S = 86400
_SPANS_MAX = 1024  # zones in use are few: a bound, never reached


def clock_at(t: float, tz: str) -> Clock:
    """The wall clock of zone `tz` at `t`: the fields of `datetime.fromtimestamp(t, zone)`."""
    span = _spans.get(tz)
    if span is not None:
        lo, hi, day, weekday, base = span
        if lo <= t < hi:
            whole = math.floor(t)
            frac = t - whole  # exact: whole is t's integer part
            # datetime rounds to microseconds, half to even: a time it rounds up to the next
            # second (maybe the next day) takes the slow path
            if frac < 0.999999 or round(frac * 1e6) < 1_000_000:
                s = base + whole - lo  # seconds past local midnight
                return day, s // _HOUR_S, s // 60 % 60, s % 60, weekday
    local = datetime.fromtimestamp(t, tz_of(tz))
    _remember(t, tz, local)
    return local.date(), local.hour, local.minute, local.second, local.weekday()


def local_datetime(c: Clock, tz: str) -> datetime:
    """`c` as an aware datetime of zone `tz`: the same wall clock (microseconds left out)."""
    d, hour, minute, second, _ = c
    return datetime(d.year, d.month, d.day, hour, minute, second, tzinfo=tz_of(tz))


def _remember(t: float, tz: str, local: datetime) -> None:
    """The span around `t` with `local`'s UTC offset throughout: its local day, else its hour."""
    whole = math.floor(t)
    if round((t - whole) * 1e6) >= 1_000_000:
        return  # `local` shows the second after `whole`: no span this time
    zone = tz_of(tz)
    offset = local.utcoffset()
    past = local.hour * _HOUR_S + local.minute * 60 + local.second  # seconds past midnight
    in_hour = past % _HOUR_S
    for lo, base, length in ((whole - past, 0, _DAY_S), (whole - in_hour, past - in_hour, _HOUR_S)):
        # one offset at both ends: none in between either (offsets change months apart)
        if (
            datetime.fromtimestamp(lo, zone).utcoffset() == offset
            and datetime.fromtimestamp(lo + length - 1, zone).utcoffset() == offset
        ):
            if len(_spans) >= _SPANS_MAX:
                _spans.clear()
            _spans[tz] = (lo, lo + length, local.date(), local.weekday(), base)
            return


# per zone: (lo, hi, local date, weekday, seconds past local midnight at lo)
_spans: dict[str, tuple[int, int, date, int, int]] = {}
