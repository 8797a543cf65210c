"""A real `geo-engine serve` process on loopback, for tests that need one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
    **env: str,
) -> subprocess.Popen[bytes]:
    """Start `geo-engine serve` and wait until it is ready. `database_url` None: whatever the
    environment says (DATABASE_URL, or the embedded server in `data_dir`)."""
    full_env = {
        **os.environ,
        **({} if database_url is None else {"DATABASE_URL": database_url}),
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
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read() if proc.stderr else ''!r}")
