"""kill -9 of a real server: what was committed is exactly what comes back."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.server import free_port, start_server

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_kill_9_keeps_committed_presence(
    clean_pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.time() - 1800
    proc = start_server(database_url, port, tmp_path, nats_url=nats_url, bus_prefix=bus_prefix)
    try:
        assert (
            httpx.post(
                f"{base}/v1/geofences", json=square_feature("shop"), headers=AUTH
            ).status_code
            == 201
        )
        r = httpx.post(
            f"{base}/v1/pings?wait=true",
            headers=AUTH,
            json={
                "pings": [
                    ping("zoe", LAT0, LON0, t0),
                    ping("yan", LAT0, LON0, t0),
                    ping("yan", *offset(LAT0, LON0, 300, 0), t0 + 30),
                ]
            },
        )
        assert [e["type"] for e in r.json()["events"]] == ["enter", "enter", "exit"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = start_server(database_url, port, tmp_path, nats_url=nats_url, bus_prefix=bus_prefix)
    try:
        inside = httpx.get(f"{base}/v1/customers/zoe/presence", headers=AUTH).json()["inside"]
        assert [f["geofence_id"] for f in inside] == ["shop"]
        # still inside after the restart: no second enter; the duplicate is recognised
        r = httpx.post(
            f"{base}/v1/pings?wait=true",
            headers=AUTH,
            json={
                "pings": [
                    ping("zoe", LAT0, LON0, t0),
                    ping("zoe", LAT0, LON0, t0 + 60),
                    ping("yan", LAT0, LON0, t0 + 10),
                ]
            },
        )
        body = r.json()
        assert body["events"] == []
        assert sorted(i["reason"] for i in body["ignored"]) == ["duplicate", "late"]
        r = httpx.post(
            f"{base}/v1/pings?wait=true",
            headers=AUTH,
            json={"pings": [ping("zoe", *offset(LAT0, LON0, 300, 0), t0 + 120)]},
        )
        assert [e["type"] for e in r.json()["events"]] == ["exit"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
