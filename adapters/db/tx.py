"""The `Transactions` port on PostgreSQL: a transaction is one pooled connection inside
`conn.transaction()`; a savepoint is a nested `conn.transaction()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from geo_engine.ports import Tx


class PgTx:
    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        return self.conn.transaction()  # type: ignore[no-any-return]


class PgTransactions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PgTx(conn)


def conn_of(tx: Tx) -> asyncpg.Connection:
    """The connection behind a PostgreSQL transaction (a memory one here is a wiring bug)."""
    if not isinstance(tx, PgTx):
        raise TypeError(f"a PostgreSQL store was handed a {type(tx).__name__}")
    return tx.conn
