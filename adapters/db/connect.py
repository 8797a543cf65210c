"""Where the database is: DATABASE_URL, or an embedded PostgreSQL kept in the data directory."""

from __future__ import annotations

import atexit
import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}


def embedded_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `data_dir/pg` and return its URL.

    pgserver keeps the cluster on disk, so state survives restarts; the server process is
    shared by every process that asks for the same directory.
    """
    pgdir = (data_dir / "pg").resolve()
    if pgdir not in _servers:
        pgdir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            from pgserver import get_server  # type: ignore[attr-defined]

            # "stop": the last engine process using the server stops it at exit (pgserver
            # counts the processes in the data directory); the data stays on disk
            server = _servers[pgdir] = get_server(pgdir, cleanup_mode="stop")
        _forget_dead_users(server)
        atexit.register(_forget_dead_users, server)  # runs before pgserver's own (LIFO)
        log.info("embedded PostgreSQL at %s", pgdir)
    uri: str = _servers[pgdir].get_uri()
    return uri


def _forget_dead_users(server: Any) -> None:
    """Drop the processes that died without saying goodbye from pgserver's list of the
    server's users. pgserver counts users by pid and forgets one only in its atexit, so a user
    killed with -9, or a uvicorn worker process (they end by re-raising SIGTERM, whose default
    action skips atexit), stayed counted and the last live user never stopped the server.
    (pgserver's lock and list: private attributes of pgserver 0.1.)"""
    import psutil

    with server._lock:
        users = server.global_process_id_list
        pids = users.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            users.put(alive)


def resolve_url(database_url: str | None, data_dir: Path) -> str:
    return database_url or embedded_url(data_dir)


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` on the same server (host, socket query and all)."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def _init_connection(conn: asyncpg.Connection) -> None:
    import json

    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    url: str, min_size: int = 1, max_size: int = 8, *, idle_in_transaction_s: float | None = None
) -> asyncpg.Pool:
    """`idle_in_transaction_s`: the server ends a session left idle inside a transaction that
    long. A partition owner paused mid-transaction (SIGSTOP, a frozen VM) would otherwise keep
    its row locks forever and stall the owner that took its partitions."""
    settings = {}
    if idle_in_transaction_s is not None:
        settings["idle_in_transaction_session_timeout"] = str(int(idle_in_transaction_s * 1000))
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        server_settings=settings,
    )
    assert pool is not None
    return pool
