"""Authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.api.errors import ApiError
from adapters.auth import Principal, Role
from adapters.composition import Services
from adapters.db.campaigns import PgCampaignRepository
from adapters.privacy.audit import SCOPE_KEY as AUDIT_SCOPE_KEY
from adapters.services.decisions import DecisionService

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


async def services(request: Request) -> Services:
    # async: a plain def dependency runs in the thread pool, a hop on every request
    svc: Services = request.app.state.services
    return svc


def decision_service(svc: Services) -> DecisionService:
    """503 rather than a crash when the services were built without it (hand-built in tests)."""
    if svc.decisions is None:
        raise ApiError(503, "the decision service is not running")
    return svc.decisions


def campaign_repo(svc: Services) -> PgCampaignRepository:
    return svc.campaigns


def bearer_key(authorization: str | None) -> str | None:
    """The key of `Authorization: Bearer <key>`, as FastAPI's HTTPBearer reads it."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


async def authenticated(svc: Services, key: str | None) -> Principal:
    """The key's principal, counted against its rate limit; 401 / 429 as the API's errors.
    Shared by the dependency below and the lean lane (adapters/api/lean.py)."""
    if not key:
        raise ApiError(401, "missing API key", headers={"WWW-Authenticate": "Bearer"})
    found = await svc.keys.principal(key)
    if found is None:
        raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    wait = svc.limiter.retry_after(found.key_id)
    if wait:
        raise ApiError(
            429,
            f"rate limit of this key exceeded: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return found


def permitted(p: Principal, roles: tuple[Role, ...]) -> Principal:
    """Admin may do everything; otherwise the key's role must be one of `roles` (else 403)."""
    if p.role is not Role.ADMIN and p.role not in roles:
        allowed = ", ".join(sorted({"admin", *map(str, roles)}))
        raise ApiError(403, f"role {p.role} may not do this (allowed: {allowed})")
    return p


async def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    key = None if creds is None else creds.credentials
    found = await authenticated(request.app.state.services, key)
    request.scope[AUDIT_SCOPE_KEY] = found  # for the audit log (adapters/privacy/audit.py)
    return found


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Admin may do everything; otherwise the key's role must be one of `roles`."""

    async def check(p: Annotated[Principal, Depends(principal)]) -> Principal:
        return permitted(p, roles)

    return check


Svc = Annotated[Services, Depends(services)]
