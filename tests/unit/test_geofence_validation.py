"""fence_from_feature: every refusal names its field and says why; good fences round-trip."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import shapely

from geofences.model import FenceKind, GeofenceError
from geofences.validation import (
    ValidationLimits,
    fence_from_feature,
    fence_to_feature,
    fences_from_collection,
)

SQUARE = [[2.35, 48.85], [2.351, 48.85], [2.351, 48.851], [2.35, 48.851], [2.35, 48.85]]
HOLE = [
    [2.3503, 48.8503],
    [2.3503, 48.8506],
    [2.3506, 48.8506],
    [2.3506, 48.8503],
    [2.3503, 48.8503],
]


def feature(geometry: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "Rivoli", "kind": "store", "store_id": "s-1"}
    base.update(props)
    return {
        "type": "Feature",
        "id": "f-1",
        "geometry": geometry or {"type": "Polygon", "coordinates": [SQUARE]},
        "properties": base,
    }


def circle(radius: Any = 50, lon: Any = 2.35, lat: Any = 48.85) -> dict[str, Any]:
    return feature({"type": "Point", "coordinates": [lon, lat]}, radius_m=radius)


def refused(
    feat: dict[str, Any], limits: ValidationLimits | None = None, **kw: Any
) -> GeofenceError:
    with pytest.raises(GeofenceError) as info:
        fence_from_feature(feat, limits or ValidationLimits(), **kw)
    return info.value


# --- accepted ---------------------------------------------------------------------------------


def test_polygon_accepted() -> None:
    f = fence_from_feature(feature(timezone="Europe/Paris", metadata={"floor": 1}))
    assert f.id == "f-1" and f.kind is FenceKind.STORE and f.store_id == "s-1"
    assert f.shape is not None and f.radius_m is None
    assert f.geometry == {"type": "Polygon", "coordinates": [SQUARE]}
    assert f.timezone == "Europe/Paris" and f.metadata == {"floor": 1}
    assert shapely.intersects_xy(f.shape, 2.3505, 48.8505)


def test_polygon_with_hole_accepted() -> None:
    f = fence_from_feature(feature({"type": "Polygon", "coordinates": [SQUARE, HOLE]}))
    assert f.shape is not None
    assert not shapely.intersects_xy(f.shape, 2.35045, 48.85045)
    assert shapely.intersects_xy(f.shape, 2.3501, 48.8501)


def test_multipolygon_accepted_and_split_at_antimeridian() -> None:
    east = [[179.99, 10.0], [180.0, 10.0], [180.0, 10.01], [179.99, 10.01], [179.99, 10.0]]
    west = [[-180.0, 10.0], [-179.99, 10.0], [-179.99, 10.01], [-180.0, 10.01], [-180.0, 10.0]]
    f = fence_from_feature(feature({"type": "MultiPolygon", "coordinates": [[east], [west]]}))
    assert f.shape is not None and f.shape.geom_type == "MultiPolygon"


def test_circle_accepted_and_ints_become_floats() -> None:
    f = fence_from_feature(circle(radius=40, lon=2, lat=48))
    assert f.is_circle and f.radius_m == 40.0 and f.shape is None
    assert f.geometry == {"type": "Point", "coordinates": [2.0, 48.0]}
    assert all(isinstance(v, float) for v in f.geometry["coordinates"])


def test_competitor_needs_no_store_and_fence_id_overrides() -> None:
    f = fence_from_feature(feature(kind="competitor", store_id=None), fence_id="other:1")
    assert f.id == "other:1" and f.store_id is None


def test_opening_hours_accepted() -> None:
    hours = {"mon": [["09:00", "12:00"], ["14:00", "24:00"]], "sun": []}
    f = fence_from_feature(feature(opening_hours=hours))
    assert f.opening_hours == hours


@pytest.mark.parametrize(
    "feat",
    [
        feature(
            timezone="Europe/Paris", opening_hours={"sat": [["10:00", "19:30"]]}, metadata={"a": 1}
        ),
        feature({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, kind="zone"),
        circle(radius=120.5),
        feature(
            {
                "type": "MultiPolygon",
                "coordinates": [[SQUARE], [[[p[0] + 0.01, p[1]] for p in SQUARE]]],
            }
        ),
    ],
)
def test_round_trip(feat: dict[str, Any]) -> None:
    f = fence_from_feature(feat)
    again = fence_from_feature(fence_to_feature(f))
    assert again == f
    assert fence_to_feature(again) == fence_to_feature(f)


def test_collection_reports_every_bad_feature_with_its_index() -> None:
    bad = feature(kind="mall")
    dup = feature()
    other = copy.deepcopy(feature())
    other["id"] = "f-2"
    good, errors = fences_from_collection(
        {"type": "FeatureCollection", "features": [feature(), bad, other, dup, "nope"]}
    )
    assert [f.id for f in good] == ["f-1", "f-2"]
    assert [(i, e.field) for i, e in errors] == [(1, "properties.kind"), (3, "id"), (4, "")]
    assert "duplicate" in errors[1][1].reason


# --- refused: one test per reason -------------------------------------------------------------


def _ring(*pts: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in pts]]}


@pytest.mark.parametrize(
    ("feat", "field", "words"),
    [
        ({**feature(), "type": "Polygon"}, "type", "Feature"),
        ({**feature(), "id": None}, "id", "missing"),
        ({**feature(), "id": "bad id!"}, "id", "characters"),
        ({**feature(), "id": "x" * 129}, "id", "1..128"),
        ({**feature(), "properties": None}, "properties", "object"),
        (feature(name=""), "properties.name", "non-blank"),
        (feature(name="x" * 201), "properties.name", "more than 200"),
        (feature(kind="mall"), "properties.kind", "'mall' is not one of"),
        (feature(store_id=None), "properties.store_id", "required"),
        (feature(kind="zone", store_id=None), "properties.store_id", "required"),
        (feature(timezone="Mars/Olympus"), "properties.timezone", "not a known IANA"),
        (
            feature(opening_hours={"mon": [["9:00", "12:00"]]}),
            "properties.opening_hours.mon[0]",
            "not a time HH:MM",
        ),
        (
            feature(opening_hours={"mon": [["12:00", "09:00"]]}),
            "properties.opening_hours.mon[0]",
            "must close later",
        ),
        (
            feature(opening_hours={"mon": [["24:00", "24:00"]]}),
            "properties.opening_hours.mon[0]",
            "cannot open at 24:00",
        ),
        (feature(opening_hours={"lun": []}), "properties.opening_hours.lun", "unknown day"),
        (
            feature(opening_hours={"tue": [["09:00", "13:00"], ["12:00", "18:00"]]}),
            "properties.opening_hours.tue[1]",
            "overlaps",
        ),
        (feature(metadata=[1]), "properties.metadata", "object"),
        (
            feature({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
            "geometry.type",
            "'LineString' cannot be a fence",
        ),
        (feature(None) | {"geometry": None}, "geometry", "required"),
        (feature(radius_m=10), "properties.radius_m", "only a Point"),
        (circle(radius=None), "properties.radius_m", "required for a Point"),
        (circle(radius=0), "properties.radius_m", "must be positive"),
        (circle(radius=-3), "properties.radius_m", "must be positive"),
        (circle(radius=math.nan), "properties.radius_m", "not a finite number"),
        (circle(radius="50"), "properties.radius_m", "not a number"),
        (circle(radius=5001), "properties.radius_m", "above the maximum 5000"),
        (circle(lon=181), "geometry.coordinates", "longitude 181.0 is outside [-180, 180]"),
        (circle(lat=-90.5), "geometry.coordinates", "latitude -90.5 is outside [-90, 90]"),
        (circle(lat=math.inf), "geometry.coordinates", "not a finite number"),
        (circle(lat=True), "geometry.coordinates", "not a number"),
        (
            feature({"type": "Point", "coordinates": [1.0]}, radius_m=5),
            "geometry.coordinates",
            "[longitude, latitude]",
        ),
        (
            feature({"type": "Polygon", "coordinates": SQUARE}),
            "geometry.coordinates[0][0]",
            "wrong nesting",
        ),
        (
            feature({"type": "Polygon", "coordinates": [[SQUARE]]}),
            "geometry.coordinates[0][0]",
            "wrong nesting",
        ),
        (feature({"type": "Polygon", "coordinates": []}), "geometry.coordinates", "non-empty"),
        (
            feature(_ring((2.35, 48.85), (2.36, 48.85), (2.35, 48.85))),
            "geometry.coordinates[0]",
            "at least 4 positions",
        ),
        (
            feature(_ring((2.35, 48.85), (2.36, 48.85), (2.36, 48.86), (2.35, 48.86))),
            "geometry.coordinates[0]",
            "not closed",
        ),
        (
            feature(_ring((2.35, 48.85), (2.36, 48.85), (2.36, 200.0), (2.35, 48.85))),
            "geometry.coordinates[0][2]",
            "latitude 200.0 is outside",
        ),
        (
            feature(
                _ring((2.35, 48.85), (2.351, 48.851), (2.351, 48.85), (2.35, 48.851), (2.35, 48.85))
            ),
            "geometry.coordinates",
            "Self-intersection",
        ),
        (
            feature(
                {"type": "Polygon", "coordinates": [SQUARE, [[p[0] + 0.01, p[1]] for p in HOLE]]}
            ),
            "geometry.coordinates",
            "Hole lies outside shell",
        ),
        (
            feature(_ring((2.35, 48.85), (2.351, 48.85), (2.352, 48.85), (2.35, 48.85))),
            "geometry.coordinates",
            "no area",
        ),
        (
            feature(_ring((2.35, 48.85), (2.35001, 48.85), (2.35001, 48.85000001), (2.35, 48.85))),
            "geometry.coordinates",
            "below the minimum",
        ),
        (
            feature(_ring((2.0, 48.0), (2.2, 48.0), (2.2, 48.2), (2.0, 48.2), (2.0, 48.0))),
            "geometry.coordinates",
            "above the maximum 25.0 km²",
        ),
        (
            feature(
                _ring((-179.0, 0.0), (179.0, 0.0), (179.0, 0.001), (-179.0, 0.001), (-179.0, 0.0))
            ),
            "geometry.coordinates",
            "antimeridian",
        ),
        (
            feature({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]}),
            "geometry.coordinates",
            "invalid polygon",
        ),
    ],
)
def test_refused(feat: dict[str, Any], field: str, words: str) -> None:
    e = refused(feat)
    assert e.field == field
    assert words in e.reason


def test_too_many_vertices() -> None:
    e = refused(feature(), ValidationLimits(max_vertices=4))
    assert e.field == "geometry.coordinates" and "5 positions, more than 4" in e.reason


def test_limits_are_configurable() -> None:
    big = _ring((2.0, 48.0), (2.2, 48.0), (2.2, 48.2), (2.0, 48.2), (2.0, 48.0))
    assert fence_from_feature(feature(big), ValidationLimits(max_area_km2=500)).shape is not None
    e = refused(circle(radius=50), ValidationLimits(max_radius_m=20))
    assert e.field == "properties.radius_m"


def test_fence_id_argument_is_checked_too() -> None:
    assert refused(feature(), fence_id="no spaces").field == "id"
