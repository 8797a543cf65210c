"""The cached wall clock (local_clock.py) is `datetime.fromtimestamp(t, zone)`'s, whatever the
order of the times asked: across midnight, daylight-saving days, zones with half-hour offsets,
and times a microsecond from the next second (which datetime rounds up)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from geo_engine.decision import local_clock
from geo_engine.decision.local_clock import clock_at, local_datetime
from geo_engine.decision.rules import tz_of

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# 2026-03-29 01:00 UTC: Paris goes from +1 to +2; 2026-10-25 01:00 UTC: back
SPRING, AUTUMN = 1_774_746_000, 1_792_890_000
AROUND = st.sampled_from([SPRING, AUTUMN, 1_795_518_000, 1_775_354_400])  # Lord Howe: April


def want(t: float, tz: str) -> tuple[object, ...]:
    d = datetime.fromtimestamp(t, tz_of(tz))
    return d.date(), d.hour, d.minute, d.second, d.weekday()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            AROUND,
            st.integers(-2 * 86400, 2 * 86400),
            st.sampled_from([0.0, 0.25, 0.9999994, 0.9999995, 0.9999996, 0.99999999]),
            st.sampled_from(ZONES),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_clock_is_datetimes(times: list[tuple[int, int, float, str]]) -> None:
    local_clock._spans.clear()
    for base, delta, frac, tz in times:
        t = base + delta + frac
        got = clock_at(t, tz)
        assert got == want(t, tz), (t, tz)
        # asked again (now from the span when one was kept): the same
        assert clock_at(t, tz) == got


def test_every_second_around_a_change_of_offset() -> None:
    local_clock._spans.clear()
    for t in range(SPRING - 2 * 3600, SPRING + 2 * 3600, 7):
        assert clock_at(t + 0.5, "Europe/Paris") == want(t + 0.5, "Europe/Paris")


def test_local_datetime_has_the_wall_clock() -> None:
    t = 1_795_518_000.25
    local = local_datetime(clock_at(t, "Europe/Paris"), "Europe/Paris")
    exact = datetime.fromtimestamp(t, tz_of("Europe/Paris"))
    assert (local.hour, local.minute, local.second, local.weekday(), local.tzinfo) == (
        exact.hour,
        exact.minute,
        exact.second,
        exact.weekday(),
        exact.tzinfo,
    )
