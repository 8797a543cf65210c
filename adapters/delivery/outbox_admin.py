"""The outbox as admins see it: rows by status, one row with its history, re-driving a dead
letter (queries in adapters/db/outbox_admin.py); and the webhook endpoints a 410 disabled,
re-enabled by hand (adapters/db/webhook_endpoints.py), shown without their secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from adapters.db import webhook_endpoints
from adapters.db.types import Pool
from adapters.db.webhook_endpoints import enable_endpoint, endpoint_id

# the webhook routes (adapters/api/routes/webhooks.py) reach these through here
__all__ = [
    "Endpoint",
    "enable_endpoint",
    "endpoint_id",
    "list_endpoints",
    "redact_url",
]


def redact_url(url: str) -> str:
    """Scheme, host, port and path; a password and the query become `***`, no fragment."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        return "***"
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if u.username is not None:
        netloc = f"{u.username}{':***' if u.password is not None else ''}@{netloc}"
    return urlunsplit((u.scheme, netloc, u.path, "***" if u.query else "", ""))


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str  # redacted
    configured: bool  # the gateway's current GEO_ENGINE_WEBHOOK_URL
    disabled_at: datetime | None
    disabled_reason: str | None
    updated_at: datetime | None


async def list_endpoints(pool: Pool, configured: str | None) -> list[Endpoint]:
    """Every URL ever disabled, and the configured one (enabled when it has no row)."""
    rows = await webhook_endpoints.endpoint_rows(pool)
    out = [
        Endpoint(
            endpoint_id(r["url"]),
            redact_url(r["url"]),
            r["url"] == configured,
            r["disabled_at"],
            r["disabled_reason"],
            r["updated_at"],
        )
        for r in rows
    ]
    if configured and all(r["url"] != configured for r in rows):
        out.append(
            Endpoint(endpoint_id(configured), redact_url(configured), True, None, None, None)
        )
    return out
