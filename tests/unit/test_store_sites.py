"""Stores derived from fences (name, centre, time zone) and a fence's index cells as polygons:
interior cells lie wholly inside the fence, boundary cells touch it, and together they cover it."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import shapely
from shapely.geometry import Polygon, shape

from geofences.cells import cell_rings, fence_cells
from geofences.model import Geofence
from geofences.stores import store_sites, zone_of
from geofences.validation import fence_from_feature
from tests.helpers import LAT0, LON0, circle_feature, offset, square_feature


def _fence(feature: dict) -> Geofence:  # type: ignore[type-arg]
    return fence_from_feature(feature, fence_id=feature["id"])


def test_a_store_is_its_fences_named_by_its_store_fence() -> None:
    lat, lon = offset(LAT0, LON0, 0, 1000)
    fences = [
        _fence(square_feature("z", kind="zone", store_id="s1", half_side_m=10)),
        _fence(square_feature("shop", name="Opéra", store_id="s1")),
        _fence(circle_feature("c", lat, lon, 50, kind="zone", store_id="s2")),
        _fence(square_feature("rival", kind="competitor", store_id=None)),
    ]
    sites = store_sites(fences)
    assert list(sites) == ["s1", "s2"]  # a fence without store_id makes no store
    s1, s2 = sites["s1"], sites["s2"]
    assert s1.name == "Opéra" and s1.fence_ids == ("shop", "z") and s1.store_fence_ids == ("shop",)
    assert np.allclose(s1.center, (LON0, LAT0), atol=1e-9)
    assert s2.name is None and s2.store_fence_ids == () and s2.center == (lon, lat)
    assert store_sites([]) == {}


def test_time_zone_declared_then_found_at_the_place_then_utc() -> None:
    shop = _fence(square_feature("shop", store_id="s1"))
    assert zone_of(store_sites([shop])["s1"]).key == "Europe/Paris"
    declared = _fence(square_feature("shop", store_id="s1", timezone="America/Cayenne"))
    assert zone_of(store_sites([declared])["s1"]).key == "America/Cayenne"
    montreal = _fence(square_feature("m", 45.5017, -73.5673, store_id="m"))
    assert zone_of(store_sites([montreal])["m"]).key in ("America/Montreal", "America/Toronto")
    at_sea = _fence(square_feature("boat", 0.0, -140.0, store_id="boat"))
    assert zone_of(store_sites([at_sea])["boat"]).key in ("UTC", "Etc/GMT+9")


def _check_cells(fence: Geofence, outline: shapely.Geometry, res: int) -> None:
    cells = fence_cells(fence, res)
    assert len(cells) > 0 and cells.resolution == res
    assert not cells.interior[: int((~cells.interior).sum())].any()  # boundary cells first
    polys = [Polygon(r) for r in cell_rings(cells.cells)]
    for poly, full, r in zip(polys, cells.interior, cells.resolutions(), strict=True):
        if full:
            assert outline.buffer(1e-7).contains(poly)
        else:
            # meets the fence or nearly: the cover is conservative (a circle's test bounds a
            # cell by its circumradius), never a cell away
            near_m = poly.distance(outline) * 111_195
            assert r == res and near_m < h3i.average_hexagon_edge_length(res, "m")
    # every fix inside the fence falls in one of the cells, at the point resolution
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = outline.bounds
    xs, ys = rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000)
    inside = shapely.contains_xy(outline, xs, ys)
    keys = set(cells.cells.tolist())
    for x, y in zip(xs[inside], ys[inside], strict=True):
        cell = h3i.latlng_to_cell(y, x, res)
        assert any(h3i.cell_to_parent(cell, r) in keys for r in range(res + 1))


def test_cells_of_a_polygon_and_a_circle_cover_them_interior_cells_wholly_inside() -> None:
    square = square_feature("shop", half_side_m=300)
    _check_cells(_fence(square), shape(square["geometry"]), 11)
    circle = _fence(circle_feature("c", LAT0, LON0, 200))
    # the circle's outline as a fine polygon (its true edge is geodesic: a 0.5 m margin)
    ring = [offset(LAT0, LON0, 200 * np.cos(a), 200 * np.sin(a)) for a in np.linspace(0, 6.3, 720)]
    outline = Polygon([(lon, lat) for lat, lon in ring]).buffer(0.5 / 111_195)
    _check_cells(circle, outline, 11)


def test_a_cell_across_the_antimeridian_keeps_its_ring_continuous() -> None:
    cell = h3i.latlng_to_cell(0.0, 179.9999, 6)
    (ring,) = cell_rings(np.array([cell], np.int64))
    lons = [p[0] for p in ring]
    assert max(lons) - min(lons) < 1.0 and ring[0] == ring[-1]
