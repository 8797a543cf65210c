"""The OwnTracks and OsmAnd parsers: the real apps' payloads decode to the right fixes, and no
input whatever makes them raise anything but ClientParseError."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.codecs import osmand, owntracks
from adapters.codecs.client_values import ClientParseError, TimeWindow, unix_time

# A wide window, so the examples from the projects' own docs and tests (2013-2025) are in it.
EVER = TimeWindow(now=2.0e9, max_future_s=120.0, max_age_s=2.0e9)
KNOT = 1852.0 / 3600.0


def _one(body: Any, user: str | None = "jane", device: str | None = "phone") -> Any:
    return owntracks.parse(body, user=user, device=device, window=EVER)


# --- OwnTracks -------------------------------------------------------------------------------

# owntracks/android's own test fixture (LocationMessageRetryTest, ContactsAndMapTests)
ANDROID_LOCATION = (
    b'{"_type":"location","acc":20,"al":0,"batt":100,"bs":0,"conn":"w","created_at":1610748273,'
    b'"lat":51.2,"lon":-4,"tid":"aa","tst":1610799026,"vac":40,"vel":7}'
)


def test_android_location_becomes_one_ping_with_units_converted() -> None:
    parsed = _one(ANDROID_LOCATION)
    assert parsed.device_id == "jane/phone"
    assert isinstance(parsed.message, owntracks.Location)
    p = parsed.message.pings.rows[0]
    assert (p.lat, p.lon, p.accuracy_m, p.device_id) == (51.2, -4.0, 20.0, "jane/phone")
    assert p.speed_mps == pytest.approx(7 / 3.6)
    assert parsed.message.pings.ts == [1610799026.0]
    assert parsed.message.created_at == 1610748273.0


def test_ios_sender_comes_from_the_topic_when_headers_are_absent() -> None:
    body = {
        "_type": "location",
        "topic": "owntracks/jane/iphone",
        "lat": 48.85,
        "lon": 2.35,
        "tst": 1700000000,
        "cog": 370,
        "acc": 0,
    }
    parsed = _one(body, user=None, device=None)
    assert parsed.device_id == "jane/iphone"
    p = parsed.message.pings.rows[0]
    assert p.heading == pytest.approx(10.0) and p.accuracy_m is None  # 0 = unknown
    assert _one(body, user="bob", device="ipad").device_id == "bob/ipad"  # headers win


def test_transition_and_beacon_are_their_own_kinds() -> None:
    # Android transition as published (trigger l), and the booklet's iOS beacon example
    t = _one(
        b'{"_type":"transition","acc":77.6,"desc":"Casa","event":"enter","lat":44.2792575,'
        b'"lon":11.9055914,"t":"l","tid":"ic","tst":1546871106,"wtst":1546866906}'
    ).message
    assert isinstance(t, owntracks.Transition)
    assert (t.event, t.region_key, t.trigger, t.waypoint_ts) == ("enter", "Casa", "l", 1546866906)
    b = _one(
        {
            "_type": "beacon",
            "uuid": "CA271EAE-5FA8-4E80-8F08-2A302A95A959",
            "major": 1,
            "minor": 1,
            "tst": 1399028969,
            "acc": -1,
            "rssi": -65,
            "prox": 2,
        }
    ).message
    assert isinstance(b, owntracks.Beacon)
    assert (b.major, b.minor, b.rssi, b.accuracy_m, b.proximity) == (1, 1, -65, None, 2)


@pytest.mark.parametrize("kind", ["lwt", "waypoint", "waypoints", "card", "cmd", "encrypted", "x"])
def test_other_types_need_no_sender(kind: str) -> None:
    parsed = _one({"_type": kind, "tst": 1}, user=None, device=None)
    assert parsed.message == owntracks.Other(kind) and parsed.device_id is None


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{not json", "malformed_json", "body"),
        (b"[1, 2]", "not_an_object", "body"),
        ({"_type": "location", "lon": 2.0, "tst": 1.6e9}, "bad_field", "lat"),
        ({"_type": "location", "lat": 91, "lon": 2.0, "tst": 1.6e9}, "bad_field", "lat"),
        ({"_type": "location", "lat": True, "lon": 2.0, "tst": 1.6e9}, "bad_field", "lat"),
        ({"_type": "location", "lat": 1, "lon": 2.0, "tst": 3e9}, "out_of_window", "tst"),
        ({"_type": "transition", "event": "stay", "tst": 1.6e9}, "bad_field", "event"),
        (
            {"_type": "beacon", "uuid": "u", "major": 70000, "minor": 1, "tst": 1},
            "bad_field",
            "major",
        ),
    ],
)
def test_bad_messages_say_why(body: Any, code: str, field: str) -> None:
    with pytest.raises(ClientParseError) as err:
        _one(body)
    assert (err.value.code, err.value.field) == (code, field)


def test_no_sender_at_all_is_refused() -> None:
    with pytest.raises(ClientParseError) as err:
        _one({"_type": "location", "lat": 1, "lon": 2, "tst": 1.6e9}, user=None, device=None)
    assert err.value.code == "missing_sender"


# --- OsmAnd / Traccar Client -----------------------------------------------------------------


def _query(q: str) -> osmand.OsmAndFixes:
    return osmand.decode(osmand.read_query(q.removeprefix("/?")), EVER, 10)


def _utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> float:
    return datetime(y, mo, d, h, mi, sec, tzinfo=UTC).timestamp()


# traccar/traccar src/test/java/org/traccar/protocol/OsmAndProtocolDecoderTest.java, testDecodeQuery
@pytest.mark.parametrize(
    ("url", "lat", "lon", "ts", "speed"),
    [
        (
            "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z"
            "&hdop=6.0&altitude=224.0&speed=0.0",
            42.06288,
            -88.23412,
            _utc(2016, 1, 27, 18, 55, 47),
            0.0,
        ),
        (
            "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0"
            "&altitude=224.0&speed=0.0",
            42.06288,
            -88.23412,
            1442068686.579,
            0.0,
        ),
        (
            "/?lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7"
            "&speed=0.0&id=353861053849681",
            49.60688,
            6.15788,
            _utc(2014, 6, 4, 9, 10, 11),
            0.0,
        ),
        ("/?id=123456&timestamp=1377177267&location=60.0,30.0", 60.0, 30.0, 1377177267.0, None),
        (
            "/?id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571"
            "&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
            40.7232948571,
            -74.0061408571,
            1504763810.0,
            40 * KNOT,
        ),
    ],
)
def test_traccar_test_suite_queries(
    url: str, lat: float, lon: float, ts: float, speed: float | None
) -> None:
    fixes = _query(url)
    assert fixes.dropped == []
    p = fixes.pings.rows[0]
    assert (p.lat, p.lon) == (lat, lon)
    assert fixes.pings.ts[0] == pytest.approx(ts)
    assert p.speed_mps == (None if speed is None else pytest.approx(speed))


def test_traccar_test_suite_edge_cases() -> None:
    cells = _query(
        "/?id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90"
        "&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70"
    )
    assert cells.pings.rows == [] and [d.code for d in cells.dropped] == ["no_location"]
    assert osmand.read_query("timestamp=1377177267&lat=60.0&lon=30.0").device_id is None
    no_time = _query("/?lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&deviceid=123456")
    assert no_time.pings.ts == [EVER.now]  # dated on arrival, like Traccar
    invalid = _query("/?id=1&lat=60.0&lon=30.0&valid=false")
    assert invalid.pings.rows == [] and invalid.dropped[0].field == "valid"


def test_traccar_client_json() -> None:
    # OsmAndProtocolDecoderTest.testDecodeJson, the iOS sample (mock, speed and heading -1)
    body = (
        b'{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,'
        b'"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,'
        b'"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,'
        b'"heading":-1},"is_moving":false,"age":188,"odometer":0,'
        b'"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange",'
        b'"battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown",'
        b'"confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}'
    )
    req = osmand.read_json(body)
    assert req.device_id == "658765"
    p = osmand.decode(req, EVER, 10).pings.rows[0]
    assert (p.lat, p.lon, p.accuracy_m, p.speed_mps, p.heading, p.mock) == (
        37.785834,
        -122.406417,
        5.0,
        None,
        None,
        True,
    )
    assert p.ts == pytest.approx(_utc(2025, 5, 9, 4, 11, 30) + 0.579)


def test_batched_json_locations_keep_their_index() -> None:
    loc = {"timestamp": "2025-06-15T13:45:12.862Z", "coords": {"latitude": 1, "longitude": 2}}
    req = osmand.read_json({"device_id": 48241179, "location": [loc, {"timestamp": 1}, loc]})
    fixes = osmand.decode(req, EVER, 3)
    assert req.device_id == "48241179" and fixes.pings.row_index == [0, 2]
    assert [(d.index, d.code) for d in fixes.dropped] == [(1, "no_location")]
    with pytest.raises(ClientParseError) as err:
        osmand.decode(req, EVER, 2)
    assert err.value.status == 413


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("id=1&lat=abc&lon=2", "lat"),
        ("id=1&lat=95&lon=2", "lat"),
        ("id=1&lat=1&lon=2&timestamp=yesterday", "timestamp"),
        ("id=1&lat=1&lon=2&speed=fast", "speed"),
        ("id=1&lat=1&lon=2&cell=1,2", "cell"),
        ("id=1&location=12", "location"),
        ("id=1&lat=nan&lon=2", "lat"),
    ],
)
def test_bad_query_values_name_the_field(query: str, field: str) -> None:
    with pytest.raises(ClientParseError) as err:
        _query(query)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1377177267", 1377177267.0),
        ("1442068686579", 1442068686.579),
        ("2016-01-27T18:55:47Z", _utc(2016, 1, 27, 18, 55, 47)),
        ("2016-01-27T20:55:47+02:00", _utc(2016, 1, 27, 18, 55, 47)),
        ("2016-01-27T18:55:47", _utc(2016, 1, 27, 18, 55, 47)),
        ("2014-06-04 09:10:11", _utc(2014, 6, 4, 9, 10, 11)),
    ],
)
def test_timestamp_forms(value: str, expected: float) -> None:
    assert unix_time(value, "timestamp", allow_ms=True) == pytest.approx(expected)


# --- fuzz: nothing but ClientParseError, ever --------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_FIELDS = ["_type", "lat", "lon", "tst", "acc", "vel", "cog", "topic", "created_at", "event"]
_FIELDS += ["desc", "rid", "wtst", "t", "uuid", "major", "minor", "rssi", "prox"]
_near_valid = st.fixed_dictionaries(
    {"_type": st.sampled_from(["location", "transition", "beacon", "lwt"])},
    optional={k: _json for k in _FIELDS[1:]},
)
_QUERY_KEYS = ["id", "deviceid", "lat", "lon", "location", "timestamp", "speed", "bearing"]
_QUERY_KEYS += ["heading", "altitude", "accuracy", "hdop", "batt", "mock", "valid", "cell", "wifi"]
_query_values = st.one_of(
    st.text(max_size=25),
    st.from_regex(r"-?\d{1,14}(\.\d{0,8})?", fullmatch=True),
    st.from_regex(r"\d{4}-\d\d-\d\d[T+ ]\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?", fullmatch=True),
)
_queries = st.lists(st.tuples(st.sampled_from(_QUERY_KEYS), _query_values), max_size=10).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _owntracks_never_crashes(body: Any) -> None:
    try:
        parsed = owntracks.parse(body, user=None, device="d", window=EVER)
    except ClientParseError:
        return
    if isinstance(parsed.message, owntracks.Location):
        p = parsed.message.pings.rows[0]
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180 and math.isfinite(p.lat)


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), _json, _near_valid))
def test_owntracks_fuzz(body: Any) -> None:
    _owntracks_never_crashes(body)


def _osmand_never_crashes(read: Any, body: Any) -> None:
    try:
        fixes = osmand.decode(read(body), EVER, 5)
    except ClientParseError:
        return
    for p in fixes.pings.rows:
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
        assert p.speed_mps is None or p.speed_mps >= 0
        assert p.heading is None or 0 <= p.heading < 360


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), _queries))
def test_osmand_query_fuzz(body: Any) -> None:
    _osmand_never_crashes(osmand.read_query, body)


_coords = st.fixed_dictionaries(
    {}, optional={k: _json for k in ["latitude", "longitude", "accuracy", "speed", "heading"]}
)
_locations = st.fixed_dictionaries(
    {}, optional={"timestamp": _json | _query_values, "coords": _coords | _json, "mock": _json}
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        _json,
        st.fixed_dictionaries(
            {"location": _locations | st.lists(_locations, max_size=7) | _json},
            optional={"device_id": _json},
        ),
    )
)
def test_osmand_json_fuzz(body: Any) -> None:
    _osmand_never_crashes(osmand.read_json, body)
