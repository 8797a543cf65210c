"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from adapters.api.deps import Svc
from adapters.db.health import is_reachable

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database and the bus are reachable",
    responses={503: {"model": Health}},
)
async def readyz(svc: Svc) -> Response:
    if not svc.bus.connected:
        return JSONResponse({"status": "bus unreachable"}, 503, headers={"Retry-After": "2"})
    if not await is_reachable(svc.pool, timeout_s=2):
        return JSONResponse({"status": "database unreachable"}, 503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
