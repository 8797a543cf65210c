"""The database's exceptions the API maps to a status, so that it need not import asyncpg."""

from __future__ import annotations

import asyncpg

# a value PostgreSQL refuses to store (a NUL in text, an integer out of range): the client's
# input, so a 422 rather than a 500
UNSTORABLE: tuple[type[Exception], ...] = (asyncpg.DataError,)

# the database is unreachable, restarting, or dropped the connection mid-request: the client
# should retry (503 + Retry-After), nothing it sent is at fault. The presence unit of work has
# rolled its memory back by then, so a retry applies the batch once.
UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError: a backend terminated
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.InterfaceError,  # the connection was closed under the request
    # the pool resetting a connection that died mid-operation ("cannot switch to state"): the
    # pool has terminated it by then
    asyncpg.InternalClientError,
    ConnectionError,  # refused or reset while (re)connecting
    TimeoutError,  # no pooled connection in time
)
