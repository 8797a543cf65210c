"""The floor the engine is measured against: a bare ASGI app that only decodes a `POST
/v1/pings` body with msgspec (the same rows, the same types and bounds) and answers 202
`{"accepted": n, "rejected": []}`. No framework, no auth, no log, no storage: what the machine's
HTTP stack allows for these bodies.

    uvicorn --factory scripts.floor_app:app --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from adapters.codecs.pings import PingIn


class _Batch(msgspec.Struct):
    pings: list[PingIn]


_decode = msgspec.json.Decoder(_Batch).decode
_encode = msgspec.json.Encoder().encode
_HEADERS = [(b"content-type", b"application/json")]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _asgi(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        n = len(_decode(b"".join(chunks)).pings)
        status, body = 202, _encode({"accepted": n, "rejected": []})
    except msgspec.DecodeError as exc:
        status, body = 422, _encode({"detail": str(exc)})
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app() -> Callable[..., Awaitable[None]]:
    return _asgi
