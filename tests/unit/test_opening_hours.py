"""Store opening hours, local time, day and distance as condition facts: computed in the fence's
own time zone from the validated `opening_hours` property; a condition on them decides."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from geo_engine.decision.conditions import compile_condition
from geo_engine.decision.facts import TriggerEvent, context_facts
from geofences.model import GeofenceError, open_at
from geofences.validation import fence_from_feature

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
HOURS = {"mon": [["09:00", "12:00"], ["14:00", "20:00"]], "sat": [["10:00", "24:00"]], "sun": []}


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=zone).timestamp()


def event(ts: float, tz: str | None = "Europe/Paris", **kw: Any) -> TriggerEvent:
    return TriggerEvent(
        kw.pop("kind", "presence"),
        kw.pop("name", "enter"),
        "alice",
        ts,
        "pe:1",
        fence_id="opera",
        fence_kind="store",
        store_id="opera",
        timezone=tz,
        opening_hours=kw.pop("hours", HOURS),
        **kw,
    )


@pytest.mark.parametrize(
    ("local", "want"),
    [
        ((2026, 11, 23, 8, 59), False),  # Monday before opening
        ((2026, 11, 23, 9, 0), True),  # opening minute
        ((2026, 11, 23, 11, 59), True),
        ((2026, 11, 23, 12, 0), False),  # lunch: the first span ends (exclusive)
        ((2026, 11, 23, 14, 30), True),
        ((2026, 11, 23, 20, 0), False),
        ((2026, 11, 28, 23, 59), True),  # Saturday until 24:00
        ((2026, 11, 29, 12, 0), False),  # Sunday: listed, no span
        ((2026, 11, 24, 12, 0), False),  # Tuesday: not listed, closed
    ],
)
def test_open_at_reads_the_day_and_spans(local: tuple[int, ...], want: bool) -> None:
    y, mo, d, h, mi = local
    assert open_at(HOURS, datetime(y, mo, d, h, mi, tzinfo=PARIS)) is want


def test_unknown_hours_are_unknown_not_closed() -> None:
    assert open_at(None, datetime(2026, 11, 23, 10, 0, tzinfo=PARIS)) is None
    facts = context_facts(event(at(PARIS, 2026, 11, 23, 10, 0), hours=None), "Europe/Paris")
    assert facts["context.store_open"] is None
    # a missing fact makes the comparison false both ways: say what you mean
    assert not compile_condition({"field": "context.store_open", "op": "eq", "value": True})(facts)
    assert not compile_condition({"field": "context.store_open", "op": "eq", "value": False})(facts)


def test_context_facts_use_the_fence_time_zone() -> None:
    """13:30 in Paris on Monday is 07:30 in New York: the same instant, open in Paris (after
    lunch), closed in a New York store with the same hours."""
    ts = at(PARIS, 2026, 11, 23, 14, 30)
    paris = context_facts(event(ts), "UTC")
    assert (paris["context.local_hour"], paris["context.day_of_week"]) == (14.5, "mon")
    assert paris["context.store_open"] is True
    ny = context_facts(event(ts, tz="America/New_York"), "UTC")
    assert (ny["context.local_hour"], ny["context.day_of_week"]) == (8.5, "mon")
    assert ny["context.store_open"] is False
    # no fence zone: the default zone decides
    fallback = context_facts(event(at(NEW_YORK, 2026, 11, 23, 10, 0), tz=None), "America/New_York")
    assert fallback["context.store_open"] is True and fallback["context.local_hour"] == 10.0


def test_daylight_saving_moves_local_hour_not_the_schedule() -> None:
    # 2026-03-30 is a Monday after the spring change (UTC+2): 09:00 local = 07:00 UTC
    ts = datetime(2026, 3, 30, 7, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    f = context_facts(event(ts), "UTC")
    assert f["context.local_hour"] == 9.0 and f["context.store_open"] is True


def test_an_explicit_store_open_wins_over_the_hours() -> None:
    ts = at(PARIS, 2026, 11, 23, 10, 0)  # open by the hours
    assert context_facts(event(ts, store_open=False), "UTC")["context.store_open"] is False


def test_distance_is_zero_inside_given_for_behaviour_unknown_after_exit() -> None:
    ts = at(PARIS, 2026, 11, 23, 10, 0)
    assert context_facts(event(ts), "UTC")["context.distance_m"] == 0.0
    assert context_facts(event(ts, name="dwell"), "UTC")["context.distance_m"] == 0.0
    assert context_facts(event(ts, name="exit"), "UTC")["context.distance_m"] is None
    cart = event(ts, kind="event", name="cart_abandon", distance_m=320.0)
    assert context_facts(cart, "UTC")["context.distance_m"] == 320.0
    far = compile_condition({"field": "context.distance_m", "op": "lte", "value": 300})
    assert not far(context_facts(cart, "UTC"))
    assert far(context_facts(event(ts), "UTC"))


def test_a_condition_on_opening_hours_and_day_decides() -> None:
    cond = compile_condition(
        {
            "all": [
                {"field": "context.store_open", "op": "eq", "value": True},
                {"field": "context.day_of_week", "op": "in", "value": ["mon", "sat"]},
                {"field": "context.local_hour", "op": "gte", "value": 10},
            ]
        }
    )
    assert cond(context_facts(event(at(PARIS, 2026, 11, 23, 10, 0)), "UTC"))
    assert not cond(context_facts(event(at(PARIS, 2026, 11, 23, 9, 30)), "UTC"))  # before 10
    assert not cond(context_facts(event(at(PARIS, 2026, 11, 23, 12, 30)), "UTC"))  # lunch


def _store(hours: Any) -> dict[str, Any]:
    ring = [[2.33, 48.87], [2.34, 48.87], [2.34, 48.88], [2.33, 48.88], [2.33, 48.87]]
    return {
        "type": "Feature",
        "id": "opera",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "name": "Opéra",
            "kind": "store",
            "store_id": "opera",
            "opening_hours": hours,
        },
    }


def test_validated_hours_feed_open_at() -> None:
    fence = fence_from_feature(_store(HOURS))
    assert open_at(fence.opening_hours, datetime(2026, 11, 23, 9, 0, tzinfo=PARIS)) is True


@pytest.mark.parametrize(
    ("hours", "field", "reason"),
    [
        ("9-20", "properties.opening_hours", "keyed by day"),
        ({"monday": []}, "properties.opening_hours.monday", "unknown day"),
        ({"mon": [["09:00", "25:00"]]}, "properties.opening_hours.mon[0]", "HH:MM"),
        ({"mon": [["14:00", "20:00"], ["09:00", "12:00"]]}, "properties.opening_hours.mon[1]", ""),
    ],
)
def test_bad_hours_name_the_field(hours: Any, field: str, reason: str) -> None:
    with pytest.raises(GeofenceError) as err:
        fence_from_feature(_store(hours))
    assert err.value.field == field and reason in err.value.reason
