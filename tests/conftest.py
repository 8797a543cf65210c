"""Shared fixtures: a real PostgreSQL for the session (embedded pgserver by default, the server
named by TEST_DATABASE_URL when set), a fresh database per run, emptied between tests."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from adapters.db.connect import create_pool, embedded_url, with_database
from adapters.db.migrate import migrate

ADMIN_KEY = "test-admin-key-0123456789"

# the bus: the machine's NATS when TEST_NATS_URL is set, else one started from the wheel
pytest_plugins = ["tests.nats_fixture"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (a minute or two each) first: started last, one of them kept a worker
    busy minutes after the other had finished (11:52 wall for 8:36 of work on 2 workers)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="geo-engine-test-") as tmp:
        yield embedded_url(Path(tmp))


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A database of its own for this run, so parallel runs and old data never interfere."""
    name = f"geo_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    yield url
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, 1, 4)
    await migrate(p)
    yield p
    await p.close()


@pytest.fixture
async def clean_pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    # DELETE with foreign keys off, then the sequences back to 1: what TRUNCATE ... RESTART
    # IDENTITY does, ten times faster on these small tables (TRUNCATE swaps every table's
    # files), which every database test pays in its setup
    async with pool.acquire() as conn, conn.transaction():
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'"
        )
        seqs = await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        await conn.execute("SET LOCAL session_replication_role = replica")
        if tables:
            await conn.execute(";".join(f'DELETE FROM "{t["tablename"]}"' for t in tables))
        if seqs:
            await conn.execute(
                ";".join(f"SELECT setval('\"{s['sequencename']}\"', 1, false)" for s in seqs)
            )
    return pool


@pytest.fixture
async def bus_prefix(nats_url: str) -> AsyncIterator[str]:
    """A log of this test's own (its stream is deleted after it): the database is emptied
    between tests, so the log must start empty too, or owners would replay another test's."""
    import nats

    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield prefix
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().delete_stream(f"{prefix.upper()}_INGEST")
    except Exception:  # never created
        pass
    finally:
        await nc.close()


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, bus_prefix: str):  # type: ignore[no-untyped-def]
    from adapters.settings import Settings

    def make(**overrides: object) -> Settings:
        base: dict[str, object] = {
            "database_url": database_url,
            "nats_url": nats_url,
            "bus_prefix": bus_prefix,
            # fewer partitions than a deployment's 16: each test starts its owners afresh
            "partitions": 4,
            "admin_key": ADMIN_KEY,
            "db_pool_max": 4,
            # synthetic customers with no consent record: the tests of the consent gate
            # itself turn the legal default (True) back on
            "require_location_consent": False,
        }
        base.update(overrides)
        return Settings(**base)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def services(clean_pool: asyncpg.Pool, settings_factory):  # type: ignore[no-untyped-def]
    from adapters.composition import build_services

    svc = await build_services(settings_factory(), background=False)
    yield svc
    await svc.close()


@pytest.fixture
async def client(services) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    from adapters.api.app import create_app

    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as c:
        yield c


@pytest.fixture
async def open_client(clean_pool, settings_factory):  # type: ignore[no-untyped-def]
    """(admin client, services) with sending hours open all day and no holdout: a decision's
    outcome does not depend on the clock (tests.helpers.ALWAYS_OPEN)."""
    from tests.helpers import open_services

    async with open_services(settings_factory) as pair:
        yield pair
