"""The FastAPI application: routers, error shape, and the services' lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.api import errors
from adapters.api.routes import geofences, health, identities, keys, pings, presence
from adapters.composition import Services, build_services
from adapters.settings import Settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """With `services`, the caller owns them (tests); otherwise they live with the app."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        svc = await build_services(settings or Settings())
        app.state.services = svc
        try:
            yield
        finally:
            await svc.close()

    app = FastAPI(
        title="geo-engine",
        version="0.1.0",
        summary="Geolocation-aware in-store trigger engine",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    errors.install(app)
    for module in (health, keys, geofences, pings, presence, identities):
        app.include_router(module.router)
    return app
