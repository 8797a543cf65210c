"""A real `geo-engine serve` process on loopback, for tests that need one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    database_url: str | None,
    port: int,
    data_dir: Path,
    *,
    admin_key: str = ADMIN_KEY,
    timeout_s: float = 30.0,
    nats_url: str | None = None,
    bus_prefix: str | None = None,
    role: str = "all",
    extra_args: Sequence[str] = (),
    **env: str,
) -> subprocess.Popen[bytes]:
    """Start `geo-engine serve` and wait until it is ready. `database_url` None: whatever the
    environment says (DATABASE_URL, or the embedded server in `data_dir`); `nats_url` None:
    the embedded NATS in `data_dir` (a process killed with -9 leaves it running: tests that
    kill pass the session's bus). `role` worker has no HTTP: ready once it owns partitions."""
    full_env = {
        **os.environ,
        **({} if database_url is None else {"DATABASE_URL": database_url}),
        **({} if nats_url is None else {"GEO_ENGINE_NATS_URL": nats_url}),
        **({} if bus_prefix is None else {"GEO_ENGINE_BUS_PREFIX": bus_prefix}),
        "GEO_ENGINE_ADMIN_KEY": admin_key,
        "GEO_ENGINE_DATA_DIR": str(data_dir),
        # synthetic customers without consent records (see conftest.settings_factory)
        "GEO_ENGINE_REQUIRE_LOCATION_CONSENT": "false",
        **env,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--role",
            role,
            "--port",
            str(port),
            "--log-level",
            "warning",
            *extra_args,
        ],
        env=full_env,
        stdout=subprocess.PIPE if role == "worker" else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + timeout_s
    if role == "worker":  # prints one line once it owns its share
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if b"worker" in line and b" up" in line:
            return proc
        proc.kill()
        raise AssertionError(f"worker did not start: {line!r} {proc.stderr.read()!r}")
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read() if proc.stderr else ''!r}")
