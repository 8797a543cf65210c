"""App push registration: the app reports its FCM or APNs token for the signed-in customer
(ingest key). The native push gateway sends to the provider of the customer's newest token
(adapters/delivery/gateways/push.py); a token the provider reports gone is deleted there."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.auth import Principal, Role
from adapters.db.push_tokens import delete_token, register_token
from adapters.delivery.gateways.base import pseudonym

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["push tokens"], responses=ERROR_RESPONSES)
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]
_APNS = re.compile(r"^[0-9a-fA-F]{64}$")
_BLANK = re.compile(r"[\s\x00-\x1f\x7f]")
FCM_MAX = 4096


class Provider(StrEnum):
    FCM = "fcm"
    APNS = "apns"


class PushTokenIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\s/]+$")
    # before `token`: its check depends on the provider
    provider: Provider
    token: str = Field(
        min_length=1,
        max_length=FCM_MAX,
        description="APNs: the device token as 64 hex digits; FCM: the registration token",
    )
    platform: str | None = Field(
        default=None, max_length=32, pattern=r"^[a-z0-9_.-]+$", examples=["ios", "android"]
    )

    @field_validator("token")
    @classmethod
    def _shape(cls, v: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider is Provider.APNS:
            if not _APNS.match(v):
                raise ValueError("an APNs device token is 64 hexadecimal digits")
            return v.lower()
        if _BLANK.search(v):
            raise ValueError("an FCM registration token has no whitespace or control characters")
        return v


class PushTokenOut(BaseModel):
    customer_id: str
    provider: Provider
    platform: str | None
    registered_at: datetime
    moved: bool = Field(description="The token belonged to another customer until now")


class PushTokenDeleted(BaseModel):
    deleted: bool


@router.post("/push-tokens", response_model=PushTokenOut, summary="Register an app push token")
async def register(body: PushTokenIn, svc: Svc, _: Ingest) -> PushTokenOut:
    """Upsert: a token already known is refreshed (it becomes the customer's newest); a token
    registered by another customer (a shared device, a new sign-in) moves to this one."""
    done = await register_token(
        svc.pool, body.token, body.customer_id, str(body.provider), body.platform
    )
    moved = done.previous_owner is not None and done.previous_owner != body.customer_id
    if moved:
        log.info("a push token moved to %s", pseudonym(body.customer_id))
    return PushTokenOut(
        customer_id=body.customer_id,
        provider=body.provider,
        platform=body.platform,
        registered_at=done.at,
        moved=moved,
    )


@router.delete(
    "/push-tokens/{token}", response_model=PushTokenDeleted, summary="Unregister a push token"
)
async def unregister(
    token: Annotated[str, Path(min_length=1, max_length=FCM_MAX)], svc: Svc, _: Ingest
) -> PushTokenDeleted:
    """The app signed out or the user turned notifications off. 404 for an unknown token."""
    if not await delete_token(svc.pool, token):
        raise field_error(404, "token", "no such push token")
    return PushTokenDeleted(deleted=True)
