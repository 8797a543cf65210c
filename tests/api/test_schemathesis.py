"""Hostile input over the whole OpenAPI schema: schemathesis against a real server.

Checks: no 5xx; every status code, content type and response body conforms to the schema; no
route that needs a key answers without one. Bounded examples so it fits in CI. The figures of
the run (cases generated, failures per check) are printed for the closing note.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY
from tests.server import free_port, start_server

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,ignored_auth"
)


@pytest.mark.slow
def test_whole_api_survives_schemathesis(
    clean_pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    port = free_port()
    proc = start_server(
        database_url,
        port,
        tmp_path,
        nats_url=nats_url,
        bus_prefix=bus_prefix,
        GEO_ENGINE_RATE_LIMIT_PER_S="0",
        # a live presence stream of a store some generated fence created ends, and is checked
        GEO_ENGINE_PRESENCE_STREAM_MAX_S="2",
    )
    try:
        run = subprocess.run(
            [
                cli, "run", f"http://127.0.0.1:{port}/openapi.json",
                "-H", f"Authorization: Bearer {ADMIN_KEY}",
                "--checks", CHECKS,
                "--max-examples", "12",
                "--seed", "20261122",
                "--no-color",
            ],
            capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    out = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, .*", out)
    print("schemathesis:", summary.group(0) if summary else "no summary")
    assert run.returncode == 0, out[-6000:]
    assert summary is not None and int(summary.group(1)) > 500
