"""Audit log: every change (POST, PUT, PATCH, DELETE) made by an admin or staff key — who (key
id, role), what (method, route, path), when, and the response status — readable by admin.

An ASGI middleware, so no route can forget it; the authentication dependency leaves the
resolved principal in the request scope (`SCOPE_KEY`). Bodies are never recorded (they carry
keys, SUN secrets, personal data), and a customer id in the path is masked: the trail must not
undo an erasure. Writing happens after the response is sent, and a failed write is logged,
never turned into an error for the caller.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.auth import Principal, Role
from adapters.db import audit as audit_db
from adapters.db.types import Pool

log = logging.getLogger(__name__)

SCOPE_KEY = "geo_engine.principal"
AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_ROLES = frozenset({Role.ADMIN, Role.STAFF})
MASKED_PARAMS = frozenset({"customer_id"})  # personal: kept as the placeholder


def masked_path(route: str, params: dict[str, Any]) -> str:
    path = route
    for name, value in params.items():
        if name not in MASKED_PARAMS:
            path = path.replace("{" + name + "}", str(value)).replace(
                "{" + name + ":path}", str(value)
            )
    return path


class AuditLog:
    """ASGI middleware: wraps the app, records audited requests in `audit_log`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in AUDITED_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before answering

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            p = scope.get(SCOPE_KEY)
            if isinstance(p, Principal):
                await self._write(scope, p, status)

    async def _write(self, scope: Scope, p: Principal, status: int) -> None:
        route = getattr(scope.get("route"), "path", None) or scope["path"]
        path = masked_path(route, dict(scope.get("path_params") or {}))
        await record(scope["app"].state.services.pool, p, scope["method"], route, path, status)


async def record(pool: Pool, p: Principal, method: str, route: str, path: str, status: int) -> None:
    """One audited request, if the key's role is audited; a failed write is logged only.
    Shared with the lean lane (adapters/api/lean.py), which answers ahead of this middleware."""
    if p.role not in AUDITED_ROLES:
        return
    try:
        await audit_db.insert_entry(pool, p.key_id, str(p.role), method, route, path, status)
    except Exception:  # the change is done: losing its trace must not fail the request
        log.exception("audit log write failed")
