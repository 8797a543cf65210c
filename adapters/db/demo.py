"""The demo's own SQL: a fresh database for each run (adapters/demo/run.py)."""

from __future__ import annotations

import asyncpg

Pool = asyncpg.Pool  # what the demo's relay reads the outbox through (adapters/demo/loop.py)


async def recreate_database(server: str, name: str) -> None:
    """Drop database `name` on `server` (a URL to another database) and create it empty."""
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
