"""A tiny HTTP/1.1 server on loopback (asyncio streams + h11) whose answers are scripted per
request: a reply, a connection reset, or a hang past the client's timeout. Real sockets, so
the gateways' httpx clients, timeouts and connection pools run as in production."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
        h = {"content-type": "application/json", **(headers or {})}
        return cls(status, json.dumps(obj).encode(), h)


class Reset:
    """Abort the connection (TCP RST) instead of answering."""


class Hang:
    """Answer nothing for `seconds` (past the client's timeout), then close."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds


Answer = Reply | Reset | Hang
Handler = Callable[[Request], Awaitable[Answer]]


class LoopbackServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> LoopbackServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()

    async def __aenter__(self) -> LoopbackServer:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        req: h11.Request | None = None
        body = b""
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(ev, h11.Request):
                req = ev
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                assert req is not None
                headers = {k.decode().lower(): v.decode() for k, v in req.headers}
                return Request(req.method.decode(), req.target.decode(), headers, body)
            else:  # ConnectionClosed, PAUSED
                return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read(conn, reader)
                if request is None:
                    return
                self.requests.append(request)
                answer = await self.handler(request)
                if isinstance(answer, Reset):
                    writer.transport.abort()
                    return
                if isinstance(answer, Hang):
                    await asyncio.sleep(answer.seconds)
                    return
                headers = [*answer.headers.items(), ("content-length", str(len(answer.body)))]
                writer.write(conn.send(h11.Response(status_code=answer.status, headers=headers)))
                writer.write(conn.send(h11.Data(data=answer.body)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


class Script:
    """Answers in order (the last one repeats); `None` = the fake's normal success answer."""

    def __init__(self, *answers: Answer | None) -> None:
        self.answers = list(answers) or [None]
        self.n = 0

    def next(self) -> Answer | None:
        self.n += 1
        return self.answers[min(self.n, len(self.answers)) - 1]
