"""asyncpg's types under the names the rest of adapters uses: code that is handed a pool or a
row only to pass it on names it from here, so asyncpg is imported in adapters/db alone (and the
composition root, which creates the pool)."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

Pool: TypeAlias = asyncpg.Pool
Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record
