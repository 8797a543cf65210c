"""The database's exceptions the API maps to a status, so that it need not import asyncpg."""

from __future__ import annotations

import asyncpg

# a value PostgreSQL refuses to store (a NUL in text, an integer out of range): the client's
# input, so a 422 rather than a 500
UNSTORABLE: tuple[type[Exception], ...] = (asyncpg.DataError,)
