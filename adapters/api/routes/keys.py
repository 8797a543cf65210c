"""API keys (admin): created with a role and store scope, shown once, revocable."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, model_validator

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, field_error
from adapters.auth import Principal, Role

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
StoreId = Annotated[str, Field(min_length=1, max_length=128)]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    store_ids: list[StoreId] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _staff_scope(self) -> KeyIn:
        if self.role is Role.STAFF and not self.store_ids:
            raise ValueError("a staff key needs at least one store id in store_ids")
        return self


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    store_ids: list[str]
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(BaseModel):
    id: str
    name: str
    role: Role
    store_ids: list[str]
    key: str = Field(description="The secret: shown once, never again")


@router.post("", status_code=201, response_model=KeyCreated, summary="Create an API key")
async def create_key(body: KeyIn, svc: Svc, _: Admin) -> KeyCreated:
    key_id, key = await svc.keys.create(body.name, body.role, body.store_ids)
    return KeyCreated(
        id=key_id, name=body.name, role=body.role, store_ids=sorted(set(body.store_ids)), key=key
    )


@router.get("", response_model=list[KeyOut], summary="List API keys (never the secrets)")
async def list_keys(svc: Svc, _: Admin) -> list[KeyOut]:
    return [KeyOut(**dict(r)) for r in await svc.keys.list()]


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(key_id: str, svc: Svc, _: Admin) -> Response:
    if not await svc.keys.revoke(key_id):
        raise field_error(404, "key_id", f"no active API key {key_id!r}")
    return Response(status_code=204)
