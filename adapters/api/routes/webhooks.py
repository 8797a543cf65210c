"""Webhook endpoints (admin): `GET /v1/webhook-endpoints` lists the URLs a partner disabled by
answering 410 Gone (and the configured one), `POST /v1/webhook-endpoints/{id}/enable` puts one
back in use. URLs are shown without their secrets; an endpoint is named by a hash of its URL.
Queries in adapters/delivery/outbox_admin.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.auth import Principal
from adapters.delivery.gateways.webhook import WebhookGateway
from adapters.delivery.outbox_admin import Endpoint, enable_endpoint, list_endpoints
from adapters.delivery.outbox_admin import endpoint_id as hash_of

router = APIRouter(prefix="/v1", tags=["delivery"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]
EndpointId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{16}$", description="The `id` of GET /v1/webhook-endpoints")
]


class EndpointOut(BaseModel):
    id: str = Field(description="16 hex digits: a hash of the URL")
    url: str = Field(description="Without password, query nor fragment (they may be secrets)")
    configured: bool = Field(description="The URL the webhook gateway sends to now")
    disabled_at: datetime | None = Field(description="Set: every message is a dead letter")
    disabled_reason: str | None = Field(description="e.g. http_410")
    updated_at: datetime | None


class EnabledOut(EndpointOut):
    redriven: int = Field(0, description="Dead letters put back to pending (`redrive_dead`)")


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]


def _out(e: Endpoint) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        url=e.url,
        configured=e.configured,
        disabled_at=e.disabled_at,
        disabled_reason=e.disabled_reason,
        updated_at=e.updated_at,
    )


def _configured(svc: Svc) -> str | None:
    s = svc.settings
    uses = "webhook" in (s.delivery_sms_gateway, s.delivery_push_gateway)
    return s.webhook_url if uses and s.webhook_url else None


@router.get(
    "/webhook-endpoints", response_model=EndpointList, summary="Webhook endpoints and their state"
)
async def get_endpoints(svc: Svc, _: Admin) -> EndpointList:
    return EndpointList(
        endpoints=[_out(e) for e in await list_endpoints(svc.pool, _configured(svc))]
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/enable",
    response_model=EnabledOut,
    summary="Re-enable a webhook endpoint disabled by a 410",
)
async def enable(
    endpoint_id: EndpointId,
    svc: Svc,
    _: Admin,
    redrive_dead: Annotated[
        bool,
        Query(description="Also re-drive the unexpired messages it dead-lettered while off"),
    ] = False,
) -> EnabledOut:
    """This process's relay delivers the next message (its gateways read the state again); a
    relay in another process within 5 s (the gateway's state TTL). Messages dead-lettered as
    `endpoint_disabled` stay so unless `redrive_dead` (or one by one:
    POST /v1/outbox/{id}/retry). Enabling an endpoint in use changes nothing (200)."""
    got = await enable_endpoint(svc.pool, endpoint_id, redrive_dead=redrive_dead)
    if svc.relay is not None:
        for gw in svc.relay.gateways.values():
            if isinstance(gw, WebhookGateway):
                gw.forget_state()
    configured = _configured(svc)
    if got is None and not (configured and hash_of(configured) == endpoint_id):
        raise ApiError(404, f"no webhook endpoint {endpoint_id}")
    found = await list_endpoints(svc.pool, configured)
    e = _out(next(e for e in found if e.id == endpoint_id))
    return EnabledOut(**e.model_dump(), redriven=0 if got is None else got[1])
