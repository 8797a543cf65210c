"""The console in a real headless Chromium (Playwright for Python, the system's Chromium through
`executable_path`: no browser download), against a real `geo-engine serve`.

One server for the whole run (per xdist worker: a `serve` takes ~8 s to start on 2 cores) and
one browser per module (~1 s), each test its own browser context (a fresh sessionStorage, so a
fresh sign-in); every test works in stores and customers of its own, so tests never see each
other's data. On CI (GEO_ENGINE_REQUIRE_BROWSER=1) a missing Chromium or
Playwright fails the run instead of skipping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.db.connect import with_database
from tests.conftest import ADMIN_KEY
from tests.server import free_port, start_server

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 800}  # a landscape tablet or a small laptop
ROOT = Path(__file__).resolve().parents[2]


def _missing(what: str) -> None:
    if os.environ.get("GEO_ENGINE_REQUIRE_BROWSER"):
        pytest.fail(f"{what}: the console's browser tests must run here")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API holds its event loop as the
    thread's running loop until it stops, and the suite's async tests (pytest-asyncio) cannot
    run under it; pytest tears a module's fixtures down before the next module's tests."""
    chromium = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if chromium is None:
        _missing("no Chromium on this machine (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])  # root in CI
        yield b
        b.close()


def run_async(coro: Any) -> Any:
    """An asyncpg call from a sync fixture, on a thread of its own (pytest-asyncio owns this
    thread's loop)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(coro)))
    thread.start()
    thread.join()
    return out[0] if out else None


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Console:
    url: str  # http://127.0.0.1:port
    database_url: str
    admin: httpx.Client
    shots: Path
    key_ids: dict[str, str] = field(default_factory=dict)  # secret -> id, to revoke it

    def staff_key(self, *store_ids: str) -> str:
        r = self.admin.post(
            "/v1/api-keys", json={"name": "staff", "role": "staff", "store_ids": list(store_ids)}
        )
        assert r.status_code == 201, r.text
        self.key_ids[r.json()["key"]] = r.json()["id"]
        return str(r.json()["key"])


@pytest.fixture(scope="session")
def console(
    server_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """A `geo-engine serve` on a database and a log of its own (dropped after, even when the
    server did not start)."""
    name = f"geo_browser_{uuid.uuid4().hex[:10]}"
    run_async(_admin(server_url, f'CREATE DATABASE "{name}"'))
    data = tmp_path_factory.mktemp("console")
    db = with_database(server_url, name)
    # screenshots: bench/console/ when asked (the committed ones), else this run's temp dir
    wanted = os.environ.get("GEO_ENGINE_CONSOLE_SCREENSHOTS")
    shots = (ROOT / wanted) if wanted else data / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        stack.callback(run_async, _admin(server_url, drop))
        port = free_port()
        proc = start_server(
            db,
            port,
            data,
            nats_url=nats_url,
            bus_prefix=f"b{uuid.uuid4().hex[:12]}",
            timeout_s=120.0,  # ~8 s on a quiet 2-core machine; much more while others load it
            # sending allowed at any hour, any day: a walk-in's offer is sent, not held, whenever
            # the suite runs (it was held after 21:00 in Paris); the holdout stays (results)
            GEO_ENGINE_DECISION_HOURS="[0, 24]",
            GEO_ENGINE_DECISION_SMS_HOURS="[0, 24]",
            GEO_ENGINE_DECISION_SMS_WEEKDAYS="[0, 1, 2, 3, 4, 5, 6]",
            GEO_ENGINE_DECISION_SMS_HOLIDAY_COUNTRY="",
        )
        stack.callback(_stop, proc)
        base = f"http://127.0.0.1:{port}"
        client = stack.enter_context(
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        )
        yield Console(base, db, client, shots)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def tab(browser: Any, refusals: tuple[int, ...] = (403, 422), **context: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage); any script error or console error fails the test,
    but the browser's note of a refused fetch with a status in `refusals` (the API's refusals
    are the point of some tests)."""
    ctx = browser.new_context(**{"viewport": VIEWPORT, "locale": "fr-FR", **context})
    p = ctx.new_page()
    problems: list[str] = []
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    p.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") and not _refused(m.text, refusals)
            else None
        ),
    )
    p.set_default_timeout(10_000)
    try:
        yield p
    finally:
        ctx.close()
    assert problems == [], problems


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    with tab(browser) as p:
        yield p


def _refused(text: str, statuses: tuple[int, ...]) -> bool:
    return "Failed to load resource" in text and any(f"status of {s} " in text for s in statuses)


def sign_in(page: Any, console: Console, key: str = ADMIN_KEY, at: str = "map") -> None:
    page.goto(f"{console.url}/console/")
    page.fill("#signin-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#nav a")
    if at != "map":
        page.click(f"#nav-{at}")
    # its first load done: the map fits its fences then, which would move a view set before
    page.wait_for_selector(f'#view[data-page="{at}"][data-ready="true"]')


def shot(
    page: Any, console: Console, name: str, full_page: bool = False, toast: bool = False
) -> Path:
    """A screenshot of the page as it is (the last notice hidden unless it is the point)."""
    if not toast:
        page.evaluate("document.getElementById('toast').hidden = true")
    path = console.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


Waiter = Callable[[], bool]
