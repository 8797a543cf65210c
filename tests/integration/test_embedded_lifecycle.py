"""Anything the engine starts it also stops: `geo-engine serve` on the embedded PostgreSQL and
the embedded NATS, stopped with Ctrl-C (SIGINT), leaves neither running; the data stays for the
next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import ADMIN_KEY
from tests.server import free_port, start_server


def _postmaster(data_dir: Path) -> psutil.Process | None:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    return psutil.Process(pid) if psutil.pid_exists(pid) else None


def _nats(data_dir: Path) -> psutil.Process | None:
    state = data_dir / "nats" / "server.json"
    if not state.exists():
        return None
    pid = int(json.loads(state.read_text())["pid"])
    return psutil.Process(pid) if psutil.pid_exists(pid) else None


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_stops_the_embedded_postgresql_and_keeps_its_data() -> None:
    # not pytest's tmp_path: its parents are closed to the user pgserver runs PostgreSQL as
    with tempfile.TemporaryDirectory(prefix="geo-engine-lifecycle-") as tmp:
        _serve_twice(Path(tmp))


def _serve_twice(tmp_path: Path) -> None:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "GEO_ENGINE_NATS_URL", "NATS_URL"):
        os.environ.pop(name, None)
    try:
        port = free_port()
        proc = start_server(None, port, tmp_path, timeout_s=120)
        try:
            postmaster = _postmaster(tmp_path)
            assert postmaster is not None and postmaster.is_running()
            nats = _nats(tmp_path)
            assert nats is not None and nats.is_running()
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/api-keys",
                json={"name": "app", "role": "ingest"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert r.status_code == 201, r.text
        finally:
            _stop(proc)
        assert proc.returncode is not None
        postmaster.wait(timeout=30)  # gone, not merely idle
        assert not postmaster.is_running()
        nats.wait(timeout=30)
        assert not nats.is_running()
        # the next start finds what the last one stored
        proc = start_server(None, port, tmp_path, timeout_s=120)
        try:
            keys = httpx.get(
                f"http://127.0.0.1:{port}/v1/api-keys",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ).json()
            assert [k["name"] for k in keys] == ["app"]
        finally:
            _stop(proc, signal.SIGTERM)  # as kill, systemd and docker stop it: the same
        deadline = time.time() + 30
        while _postmaster(tmp_path) is not None and time.time() < deadline:
            time.sleep(0.2)
        assert _postmaster(tmp_path) is None
        assert _nats(tmp_path) is None or not _nats(tmp_path).is_running()  # type: ignore[union-attr]
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_sigterm_stops_what_serve_with_several_workers_started() -> None:
    """`serve --workers 2`: uvicorn's worker processes end by re-raising SIGTERM, whose default
    action skips atexit; the parent, which outlives them, stops the servers."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "GEO_ENGINE_NATS_URL", "NATS_URL"):
        os.environ.pop(name, None)
    try:
        with tempfile.TemporaryDirectory(prefix="geo-engine-lifecycle-") as tmp:
            data = Path(tmp)
            port = free_port()
            proc = start_server(None, port, data, timeout_s=120, extra_args=["--workers", "2"])
            try:
                postmaster, nats = _postmaster(data), _nats(data)
                assert postmaster is not None and nats is not None
                r = httpx.get(f"http://127.0.0.1:{port}/healthz")
                assert r.status_code == 200, r.text
            finally:
                _stop(proc, signal.SIGTERM)
            assert proc.returncode == 0
            postmaster.wait(timeout=30)
            nats.wait(timeout=30)
            assert not postmaster.is_running() and not nats.is_running()
    finally:
        os.environ.clear()
        os.environ.update(env)
