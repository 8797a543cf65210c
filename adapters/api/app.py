"""The FastAPI application: routers, error shape, and the services' lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from adapters import console
from adapters.api import errors
from adapters.api.lean import LeanLane
from adapters.api.limits import BodySizeLimit
from adapters.api.routes import (
    beacons,
    callbacks,
    campaigns,
    clients,
    cluster,
    customers,
    decisions,
    events,
    fence_cells,
    geofences,
    health,
    identities,
    keys,
    nfc,
    offers,
    outbox,
    outcomes,
    pings,
    presence,
    privacy,
    push_tokens,
    results,
    stores,
    tasks,
    webhooks,
)
from adapters.composition import Services, build_services
from adapters.privacy.audit import AuditLog
from adapters.settings import Settings


class EngineApp(FastAPI):
    """FastAPI with the lean lane in front: the hot routes skip its middleware, routing and
    dependency solving (adapters/api/lean.py); every other request is FastAPI's."""

    lane = LeanLane(pings.LANE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.lane.route(scope)
        svc = getattr(self.state, "services", None) if route is not None else None
        if route is not None and svc is not None:
            await self.lane.serve(svc, route, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """With `services`, the caller owns them (tests); otherwise they live with the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        svc = await build_services(settings or Settings())  # gc_policy: settled, scheduled
        app.state.services = svc
        try:
            yield
        finally:
            await svc.close()

    app = EngineApp(
        title="geo-engine",
        version="0.1.0",
        summary="Geolocation-aware in-store trigger engine",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    cfg = settings or (services.settings if services is not None else Settings())
    if cfg.cors_origins:  # closed unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(AuditLog)  # outermost: a change refused by a limit is recorded too
    errors.install(app)
    for module in (
        health,
        cluster,
        keys,
        geofences,
        fence_cells,
        stores,
        pings,
        presence,
        identities,
        clients,
        beacons,
        nfc,
        events,
        customers,
        privacy,
        offers,
        campaigns,
        decisions,
        outbox,
        outcomes,
        results,
        callbacks,
        push_tokens,
        tasks,
        webhooks,
    ):
        app.include_router(module.router)
    app.include_router(console.router)  # /console: the web console (adapters/console)
    return app
