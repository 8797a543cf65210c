"""`geo-engine demo --serve` from a bare machine's point of view: a tiny day on the embedded
PostgreSQL and NATS, then the API and the console served with the printed keys; Ctrl-C stops
the engine with a live stream open, and the PostgreSQL and NATS it started with it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import pytest

from tests.integration.test_embedded_lifecycle import _nats, _postmaster
from tests.server import free_port

UNSET = ("DATABASE_URL", "GEO_ENGINE_DATABASE_URL", "GEO_ENGINE_NATS_URL", "NATS_URL")


def _read_until_keys(proc: subprocess.Popen[str], timeout_s: float) -> dict[str, str]:
    """The announced lines (Console, Admin key, Staff key ...), read as they are printed."""
    found: dict[str, str] = {}
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"^(Console|Admin key|Staff key \(store (\S+)\)): (\S+)\s*$", line)
            if m:
                found[m.group(1).split(" (")[0]] = m.group(3)
                if m.group(2):
                    found["store"] = m.group(2)
            if "Staff key" in found:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert "Staff key" in found, "".join(lines[-40:])
    return found


@pytest.mark.slow
def test_demo_serve_keeps_the_city_live_and_ctrl_c_stops_everything() -> None:
    # not pytest's tmp_path: its parents are closed to the user pgserver runs PostgreSQL as
    with tempfile.TemporaryDirectory(prefix="geo-engine-demo-serve-") as tmp:
        data = Path(tmp)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in UNSET}
        env["COLUMNS"] = "200"  # rich's width when not on a terminal
        with open(data / "stderr.log", "w") as err:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "adapters.cli", "demo",
                    "--customers", "20", "--seed", "11", "--no-progress",
                    "--out", str(data / "report.html"), "--data-dir", str(data),
                    "--serve", "--port", str(port),
                ],
                env=env, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
            try:
                _check_served(proc, data, port)
            finally:
                _stop(proc)
        assert proc.returncode == 0, (data / "stderr.log").read_text()[-3000:]


def _stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C, then kill only if that failed: -9 would leave the embedded servers running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _check_served(proc: subprocess.Popen[str], data: Path, port: int) -> None:
    announced = _read_until_keys(proc, 400)
    base = f"http://127.0.0.1:{port}"
    assert announced["Console"] == f"{base}/console"
    assert (data / "report.html").exists()  # the demo's day finished first
    postmaster, nats = _postmaster(data), _nats(data)
    assert postmaster is not None and postmaster.is_running()
    assert nats is not None and nats.is_running()
    admin = {"Authorization": f"Bearer {announced['Admin key']}"}
    staff = {"Authorization": f"Bearer {announced['Staff key']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/console", follow_redirects=True).status_code == 200
        everyone = client.get("/v1/stores", headers=admin).json()["stores"]
        mine = client.get("/v1/stores", headers=staff).json()["stores"]
        assert len(everyone) > 10 and [s["store_id"] for s in mine] == [announced["store"]]
        r = client.get(f"/v1/stores/{announced['store']}/presence", headers=staff)
        assert r.status_code == 200, r.text
        other = next(s["store_id"] for s in everyone if s["store_id"] != announced["store"])
        assert client.get(f"/v1/stores/{other}/presence", headers=staff).status_code == 403
        # Ctrl-C with a live stream open: the stream is told, the engine stops, and so do the
        # PostgreSQL and NATS it started
        url = f"/v1/stores/{announced['store']}/presence/stream"
        with client.stream("GET", url, headers=staff) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: presence"
            proc.send_signal(signal.SIGINT)
            rest = list(lines)  # ends: the server closed it
        assert "event: error" in rest
    proc.wait(60)
    postmaster.wait(30)
    nats.wait(30)
    assert not postmaster.is_running() and not nats.is_running()
    assert (data / "pg" / "PG_VERSION").exists()  # the data stays for the next start
