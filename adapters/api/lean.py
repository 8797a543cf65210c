"""The lean lane: hot routes answered ahead of FastAPI's middleware stack, routing and dependency
solving, which together cost ~35% of a single fix's CPU in `serve` (py-spy; bench/e2e-*.md).

A lane route keeps its FastAPI twin's contract: the Bearer key and its rate limit, the role
check, the body limit (Content-Length first, then the streamed bytes), the Idempotency-Key and
`?wait`, the error shape and the audit trail, through the same functions. The FastAPI route stays
for the OpenAPI schema and answers what the lane leaves to it: a browser's request (an `Origin`
header: CORS is FastAPI's middleware), or a request before the services are up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope, Send

from adapters.api.deps import authenticated, bearer_key, permitted
from adapters.api.errors import ApiError, answer_of, field_error
from adapters.api.ingest import IDEMPOTENCY_HEADER
from adapters.auth import Principal, Role
from adapters.composition import Services
from adapters.privacy.audit import record

# (services, principal, body, Idempotency-Key, ?wait) -> (status, JSON body)
Handler = Callable[[Services, Principal, bytes, str | None, bool], Awaitable[tuple[int, bytes]]]

_IDEMPOTENCY = IDEMPOTENCY_HEADER.lower().encode()
# pydantic's lax booleans, as FastAPI parses `?wait=`
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class LaneRoute:
    roles: tuple[Role, ...]
    handler: Handler


class _Gone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


class LeanLane:
    def __init__(self, routes: Mapping[str, LaneRoute]) -> None:
        self._routes = dict(routes)  # POST routes, by path

    def route(self, scope: Scope) -> LaneRoute | None:
        """The lane's route for this request, or None for FastAPI to answer it."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        found = self._routes.get(scope["path"])
        if found is None or any(name == b"origin" for name, _ in scope["headers"]):
            return None
        return found

    async def serve(
        self, svc: Services, route: LaneRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        principal: Principal | None = None
        headers: dict[str, str] | None = None
        try:
            auth, key, length = _headers(scope["headers"])
            limit = svc.settings.max_body_bytes
            if length is not None and length > limit:
                raise _too_large(limit)
            principal = permitted(await authenticated(svc, bearer_key(auth)), route.roles)
            body = await _body(receive, limit)
            wait = _flag(scope["query_string"], "wait")
            status, out = await route.handler(svc, principal, body, key, wait)
        except _Gone:
            return
        except Exception as exc:
            answer = answer_of(exc)
            if answer is None:
                raise  # a bug: uvicorn answers 500 and logs it
            status, error, headers = answer
            out = _encode(error)
        await _send(send, status, out, headers)
        if principal is not None:
            await record(svc.pool, principal, "POST", scope["path"], scope["path"], status)


def _headers(raw: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, int | None]:
    auth = key = None
    length: int | None = None
    for name, value in raw:
        if name == b"authorization":
            auth = value.decode("latin-1")
        elif name == _IDEMPOTENCY:
            key = value.decode("latin-1")
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None  # the streamed count still holds the limit
    return auth, key, length


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return field_error(413, "body", f"larger than the limit of {limit} bytes")


def _flag(query: bytes, name: str) -> bool:
    values = [v for k, v in parse_qsl(query.decode("latin-1")) if k == name]
    if not values:
        return False
    value = values[-1].lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise field_error(422, name, "Input should be a valid boolean, unable to interpret input")


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str] | None) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
