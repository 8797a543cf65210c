"""Hostile input against the parsers the HTTP layer calls directly: whatever arrives, only the
parser's own refusal comes out (a 4xx upstream), never another exception (a 500).

OwnTracks and OsmAnd have theirs in test_client_parsers.py; here the GeoJSON validator, the
beacon-sighting decoder, the NFC SUN parser and verifier, and the ping decoder."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.api.errors import ApiError
from adapters.api.routes.nfc import parse_sun
from adapters.codecs.nfc_sun import SunMessage, TapRefused, verify_sun
from adapters.codecs.pings import BatchError, decode_pings
from adapters.codecs.sightings import decode_sightings
from geofences.model import GeofenceError
from geofences.validation import fence_from_feature

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
coords = st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=3)
position = st.lists(coords, min_size=0, max_size=4)
ring = st.lists(position, min_size=0, max_size=8)
geometry = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", "x"]),
        "coordinates": st.one_of(position, st.lists(ring, max_size=3), json_values),
    }
)
near_features = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Feature", "feature"]) | scalars,
        "geometry": geometry | json_values,
        "properties": st.fixed_dictionaries(
            {
                "name": st.text(max_size=5) | scalars,
                "kind": st.sampled_from(["store", "zone", "competitor", "mall"]) | scalars,
                "store_id": st.text(max_size=5) | scalars,
            },
            optional={
                "radius_m": coords,
                "timezone": st.text(max_size=20) | scalars,
                "opening_hours": json_values,
                "metadata": json_values,
            },
        )
        | json_values,
    }
)


@FUZZ
@given(feature=near_features | json_values)
def test_geojson_validator_only_refuses(feature: Any) -> None:
    if isinstance(feature, dict):  # the API hands the validator JSON objects only
        with contextlib.suppress(GeofenceError):
            fence_from_feature(feature, fence_id="f1")


def _body(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@FUZZ
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["device_id", "customer_id", "uuid", "major", "minor", "namespace",
                             "instance", "rssi", "tx_power", "ts"]),
            scalars,
        ),
        max_size=5,
    )
    | json_values,
    raw=st.binary(max_size=64),
)  # fmt: skip
def test_sighting_decoder_only_refuses(rows: Any, raw: bytes) -> None:
    for body in (_body({"sightings": rows}), raw):
        with contextlib.suppress(BatchError):
            decode_sightings(
                body, max_batch=10, max_future_s=120, max_age_s=86400, customer_for=lambda d: d
            )


@FUZZ
@given(rows=st.lists(json_values, max_size=5) | json_values, raw=st.binary(max_size=64))
def test_ping_decoder_only_refuses(rows: Any, raw: bytes) -> None:
    for body in (_body({"pings": rows}), raw):
        with contextlib.suppress(BatchError):
            decode_pings(body, max_batch=10, now=time.time(), max_future_s=120, max_age_s=86400)


sun_values = st.text(alphabet="0123456789abcdefABCDEFxyz&=?", max_size=40) | scalars
sun_objects = st.dictionaries(
    st.sampled_from(["e", "c", "picc_data", "cmac", "uid", "ctr", "enc", "x"]),
    sun_values,
    max_size=5,
)


@FUZZ
@given(raw=sun_objects | st.text(max_size=80), key=st.binary(min_size=16, max_size=16))
def test_sun_parser_and_verifier_only_refuse(raw: Any, key: bytes) -> None:
    try:
        msg = parse_sun(raw)
    except ApiError as exc:
        assert 400 <= exc.status < 500
        return
    assert isinstance(msg, SunMessage)
    try:
        verify_sun(key, key, None, msg)
    except TapRefused as exc:
        assert 400 <= exc.status < 500
