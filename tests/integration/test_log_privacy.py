"""Logs carry no phone numbers, e-mails, tokens or precise coordinates (issue 8): everything
logged, at every level, during a session of pings, events, identities and client protocols."""

from __future__ import annotations

import hashlib
import logging
import re
import time

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.integration.test_beacons import _as, _key
from tests.integration.test_events_api import ev
from tests.integration.test_owntracks import _android, _send

T0 = time.time() - 3600.0
PHONE = "+33612345678"
EMAIL = "zelda@example.com"
# a coordinate with 4+ decimals (~11 m): precise enough to locate someone
PRECISE = re.compile(r"\d{1,3}\.\d{4,}")


async def test_no_personal_data_in_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post("/v1/geofences", json=square_feature("shop"))
    ingest = await _key(client, "ingest")
    digest = hashlib.sha256(EMAIL.encode()).hexdigest()
    ids = [{"type": "phone", "value": PHONE}, {"type": "email_hash", "value": digest}]
    ids.append({"type": "device", "value": "phone-1"})
    r = await client.post("/v1/identities/link", json={"customer_id": "crm-1", "identifiers": ids})
    assert r.status_code == 200, r.text
    # bad identifiers are refused: their values must not be echoed to the logs either
    bad = [{"type": "email_hash", "value": EMAIL}]
    await client.post("/v1/identities/link", json={"customer_id": "crm-2", "identifiers": bad})
    path = [offset(LAT0, LON0, 10 * i, 0) for i in range(10)]
    rows = [
        ping("phone-1", lat, lon, T0 + 30 * i, device=True) for i, (lat, lon) in enumerate(path)
    ]
    rows.append({"device_id": "phone-1", "lat": 123.456789, "lon": 2.3, "ts": T0})  # refused
    await client.post("/v1/pings?wait=true", headers=_as(ingest), json={"pings": rows})
    events = [ev("crm-1", "search", T0, query=EMAIL), ev("crm-1", "click", T0)]
    await client.post("/v1/events?wait=true", headers=_as(ingest), json={"events": events})
    await _send(client, ingest, _android(LAT0, LON0, int(T0 + 700)))
    await _send(client, ingest, b"{not json")  # dropped and logged: without its content
    await client.get(
        "/v1/osmand", params={"id": "phone-1", "lat": LAT0, "lon": LON0, "timestamp": int(T0)}
    )
    await client.post("/v1/pings?wait=true", headers=_as("ge_wrong-key-123456"), json={"pings": []})

    # the server's records; httpx/httpcore are this test's own client (`serve` runs uvicorn
    # with access_log=False, so the OsmAnd query string is never logged server-side)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server)
    assert server, "nothing was logged: the test would prove nothing"
    for secret in (PHONE, "612345678", EMAIL, digest, ADMIN_KEY, ingest, "ge_wrong-key"):
        assert secret not in text, secret
    assert PRECISE.findall(text) == [], PRECISE.findall(text)
