"""Marketing pressure, sending hours and holdout: the rules a chosen offer must pass.

Times are unix seconds; local time comes from the trigger's time zone (the fence's)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from geo_engine.decision.bandit import BanditConfig

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


@dataclass(frozen=True, slots=True)
class Window:
    """Allowed sending hours [start_hour, end_hour) local, on `weekdays` (0 = Monday), not on
    the public holidays of `holiday_country` (None: no holiday rule)."""

    timezone: str | None  # None: the trigger's (fence's) time zone
    start_hour: float
    end_hour: float
    weekdays: frozenset[int] = frozenset(range(7))
    holiday_country: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionConfig:
    # pressure: at most this many offers per customer (overall and per channel) per day / week
    max_per_day: int = 2
    max_per_week: int = 5
    max_per_channel_day: int = 1
    max_per_channel_week: int = 3
    # allowed hours for every channel in the customer's local time (the fence's zone); the
    # quiet hours are the rest
    quiet: Window = Window(None, 9.0, 21.0)
    # the French marketing-SMS window (PROTOCOLS.md): Mon-Sat 08-20 Paris, no public holidays
    sms_window: Window = Window("Europe/Paris", 8.0, 20.0, frozenset(range(6)), "FR")
    holdout_pct: float = 5.0  # global holdout: decided and logged, never sent
    fallback_order: tuple[str, ...] = ("push", "sms")
    default_timezone: str = "Europe/Paris"
    offer_ttl_s: float = 4 * 3600.0  # an outbox row expires this long after send_after at most
    suppression_lists: frozenset[str] = frozenset()  # lists every campaign honours (partners too)
    # "expected_value": offer value x static propensity (affinity); "bandit": x a propensity
    # learned from redemptions (bandit.py), drawn per decision by the decision service
    ranking: str = "expected_value"
    bandit: BanditConfig = field(default_factory=BanditConfig)


@dataclass(frozen=True, slots=True)
class Sent:
    """An offer given to the customer earlier (sent or scheduled): what pressure counts."""

    ts: float
    channel: str
    campaign_id: str


@dataclass(slots=True)
class Pressure:
    """The customer's recent offers, counted once per decision."""

    day: int = 0
    week: int = 0
    channel_day: dict[str, int] = field(default_factory=dict)
    channel_week: dict[str, int] = field(default_factory=dict)
    last_by_campaign: dict[str, float] = field(default_factory=dict)


def pressure_of(history: Iterable[Sent], now: float) -> Pressure:
    p = Pressure()
    for s in history:
        age = now - s.ts
        if age < 0 or age >= WEEK_S:
            # a scheduled (held) offer is in the future: it counts as of now
            if age >= WEEK_S:
                continue
            age = 0.0
        p.week += 1
        p.channel_week[s.channel] = p.channel_week.get(s.channel, 0) + 1
        if age < DAY_S:
            p.day += 1
            p.channel_day[s.channel] = p.channel_day.get(s.channel, 0) + 1
        last = p.last_by_campaign.get(s.campaign_id)
        if last is None or s.ts > last:
            p.last_by_campaign[s.campaign_id] = s.ts
    return p


def channel_capped(p: Pressure, channel: str, cfg: DecisionConfig) -> bool:
    return (
        p.channel_day.get(channel, 0) >= cfg.max_per_channel_day
        or p.channel_week.get(channel, 0) >= cfg.max_per_channel_week
    )


def overall_capped(p: Pressure, cfg: DecisionConfig) -> bool:
    return p.day >= cfg.max_per_day or p.week >= cfg.max_per_week


@lru_cache(maxsize=64)
def tz_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=8)
def _holidays(country: str) -> Callable[[date], bool]:
    # a wide span of years once: lookups are then a set membership
    days = holidays.country_holidays(country, years=range(2020, 2041))
    known = frozenset(days.keys())
    return known.__contains__


def warm(cfg: DecisionConfig) -> None:
    """Load the holiday tables and zones now (~0.2 s), not in the first decision's commit."""
    for w in (cfg.quiet, cfg.sms_window):
        if w.holiday_country:
            _holidays(w.holiday_country)
        tz_of(w.timezone or cfg.default_timezone)


def next_allowed(t: float, w: Window, tz: str) -> float:
    """The first moment >= t inside window `w` (t itself when already inside)."""
    key = (w, tz)
    hit = _last.get(key)
    if hit is not None:
        # the latest answer: [start, end) is the first open interval at or after `asked`
        asked, start, end = hit
        if start <= t < end:
            return t
        if asked <= t < start:
            return start
    start, end = _open_interval(t, w, tz)
    if len(_last) > 1024:
        _last.clear()
    _last[key] = (t, start, end)
    return t if start <= t else start


# per (window, zone): the latest (asked, start, end); events arrive in time order, so most
# answers come from here without a datetime in sight
_last: dict[tuple[Window, str], tuple[float, float, float]] = {}


def _open_interval(t: float, w: Window, tz: str) -> tuple[float, float]:
    """The open interval [start, end) of `w` that holds t, or else the first one after t."""
    zone = tz_of(w.timezone or tz)
    local = datetime.fromtimestamp(t, zone)
    is_holiday = _holidays(w.holiday_country) if w.holiday_country else None
    for _ in range(32):  # a month of closed days at most
        d = local.date()
        if d.weekday() in w.weekdays and not (is_holiday is not None and is_holiday(d)):
            hour = local.hour + local.minute / 60 + local.second / 3600
            close = _at(d, w.end_hour, zone).timestamp()
            if w.start_hour <= hour < w.end_hour:
                return min(t, _at(d, w.start_hour, zone).timestamp()), close
            if hour < w.start_hour:
                return _at(d, w.start_hour, zone).timestamp(), close
        local = _at(d + timedelta(days=1), 0.0, zone)
    return float("inf"), float("inf")


def _at(d: date, hour: float, zone: ZoneInfo) -> datetime:
    if hour >= 24.0:  # the end of the day: midnight after it
        nxt = d + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    h = int(hour)
    m = round((hour - h) * 60)
    return datetime(d.year, d.month, d.day, h, m, tzinfo=zone)


def send_time(t: float, channel: str, tz: str, cfg: DecisionConfig) -> float:
    """When a message on `channel` may go out: quiet hours for all, the SMS window for SMS."""
    span = _spans.get((channel, tz))
    if span is not None and span[2] is cfg and span[0] <= t < span[1]:
        return t  # inside the span last found open for this channel and zone
    if channel != "sms":
        got = next_allowed(t, cfg.quiet, tz)
    else:
        got = t
        for _ in range(8):  # alternate until both windows agree (they overlap every working day)
            t2 = next_allowed(next_allowed(got, cfg.quiet, tz), cfg.sms_window, tz)
            if t2 == got:
                break
            got = t2
    if got == t:
        _remember_span(t, channel, tz, cfg)
    return got


def _remember_span(t: float, channel: str, tz: str, cfg: DecisionConfig) -> None:
    """`t` may go out at once: the intersection of the windows' open intervals around it (just
    computed by next_allowed) is a span where every time may, as long as `cfg` is the same."""
    lo, hi = float("-inf"), float("inf")
    for w in (cfg.quiet, cfg.sms_window) if channel == "sms" else (cfg.quiet,):
        hit = _last.get((w, tz))
        if hit is None:  # evicted meanwhile: no span this time
            return
        lo, hi = max(lo, hit[1]), min(hi, hit[2])
    if lo <= t < hi:
        if len(_spans) > 1024:
            _spans.clear()
        _spans[(channel, tz)] = (lo, hi, cfg)


# per (channel, zone): the latest span where sending is allowed at once, and the config it
# holds for (compared by identity: a config is immutable). Most decisions fall inside it: one
# dict lookup instead of two or four window lookups, each hashing a Window.
_spans: dict[tuple[str, str], tuple[float, float, DecisionConfig]] = {}


@lru_cache(maxsize=1 << 16)
def bucket(key: str) -> float:
    """A stable position in [0, 100) for `key`: the same customer always lands in the same
    group, across restarts and machines (no Python hash randomisation)."""
    h = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 * 100.0
