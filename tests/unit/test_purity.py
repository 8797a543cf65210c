"""The core stays pure: geo_engine/ and geofences/ import no I/O framework, even indirectly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"asyncio", "asyncpg", "httpx", "fastapi", "starlette", "uvicorn", "nats", "adapters"}


@pytest.mark.parametrize("package", ["geo_engine", "geofences"])
def test_no_io_framework_imported_in_source(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_core_loads_no_io_framework() -> None:
    """Also catches an I/O framework pulled in through a third-party import."""
    code = (
        "import sys, geo_engine.pipeline, geo_engine.presence, geofences.index, "
        "geofences.validation; "
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
