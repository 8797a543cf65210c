"""kill -9 of a real server: what was committed is exactly what comes back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, offset, ping, square_feature

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(database_url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GEO_ENGINE_ADMIN_KEY": ADMIN_KEY,
        "GEO_ENGINE_DATA_DIR": str(tmp),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read() if proc.stderr else ''!r}")


def test_kill_9_keeps_committed_presence(clean_pool, database_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.time() - 1800
    proc = _start(database_url, port, tmp_path)
    try:
        assert (
            httpx.post(
                f"{base}/v1/geofences", json=square_feature("shop"), headers=AUTH
            ).status_code
            == 201
        )
        r = httpx.post(
            f"{base}/v1/pings",
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
    proc = _start(database_url, port, tmp_path)
    try:
        inside = httpx.get(f"{base}/v1/customers/zoe/presence", headers=AUTH).json()["inside"]
        assert [f["geofence_id"] for f in inside] == ["shop"]
        # still inside after the restart: no second enter; the duplicate is recognised
        r = httpx.post(
            f"{base}/v1/pings",
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
            f"{base}/v1/pings",
            headers=AUTH,
            json={"pings": [ping("zoe", *offset(LAT0, LON0, 300, 0), t0 + 120)]},
        )
        assert [e["type"] for e in r.json()["events"]] == ["exit"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
