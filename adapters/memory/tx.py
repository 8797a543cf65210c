"""The `Transactions` port in memory: stores apply writes at once and journal how to undo
them; leaving a transaction (or a savepoint) by an exception runs its undos, newest first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from geo_engine.ports import Tx


class MemoryTx:
    __slots__ = ("_undo",)

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Called by a memory store right after it applied a write in this transaction."""
        self._undo.append(undo)

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        return self._scope()

    @asynccontextmanager
    async def _scope(self) -> AsyncIterator[MemoryTx]:
        mark = len(self._undo)
        try:
            yield self
        except BaseException:
            self._rewind(mark)
            raise

    def _rewind(self, mark: int) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()


class MemoryTransactions:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTx]:
        tx = MemoryTx()
        async with tx.savepoint():
            yield tx


def journal_of(tx: Tx | None) -> MemoryTx | None:
    """The memory transaction to journal in; None applies for good (no transaction)."""
    if tx is None:
        return None
    if not isinstance(tx, MemoryTx):
        raise TypeError(f"a memory store was handed a {type(tx).__name__}")
    return tx
