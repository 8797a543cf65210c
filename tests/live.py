"""For tests of streamed responses: an in-process uvicorn on loopback (httpx's ASGI transport
buffers a whole response, so a stream that never ends cannot be read through it), a reader of
server-sent events, and a TCP proxy in front of PostgreSQL that a test can take down."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import uvicorn
from fastapi import FastAPI

from adapters.api.serving import EngineServer
from tests.server import free_port


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[tuple[str, EngineServer]]:
    """(base URL, server) of `app` served on a free port; stopped on the way out."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = EngineServer(config, own_signals=False)  # pytest keeps its own signal handlers
    task = asyncio.create_task(server.serve())
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait((task, listening), timeout=15, return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    assert server.started, task
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()
        await asyncio.wait_for(task, 15)


@dataclass
class Event:
    name: str | None  # None: a comment line (": keepalive")
    data: Any
    comment: str | None = None


async def sse_events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a text/event-stream response, as they come."""
    name: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Event(None, None, line[1:].strip())
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and (name or data):
            yield Event(name or "message", json.loads("\n".join(data)) if data else None)
            name, data = None, []


class PgProxy:
    """Forwards TCP connections to the PostgreSQL of `url`; `down()` cuts every connection and
    refuses new ones, as a database that went away does."""

    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        self._unix = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 5432
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = free_port()

    @property
    def url(self) -> str:
        """`url` through the proxy: same user, password and database."""
        p = urlsplit(self._url)
        user = p.netloc.rsplit("@", 1)[0] if "@" in p.netloc else "postgres"
        return urlunsplit((p.scheme, f"{user}@127.0.0.1:{self.port}", p.path, "", ""))

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._unix is not None:
            up_r, up_w = await asyncio.open_unix_connection(self._unix)
        else:
            up_r, up_w = await asyncio.open_connection(self._host, self._port)
        self._open |= {writer, up_w}
        await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer), return_exceptions=True)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    finally:
        dst.transport.abort()
