"""NFC tags: the registry (staff manage their stores' tags) and `POST /v1/nfc-taps`.

A tap carries the tag id the app read and, for NTAG 424 DNA tags set up for SUN, the dynamic
parameters of the URL the tag produced: as an object (`picc_data` or `uid` + `ctr`, and `cmac`)
or as the URL / query string itself (`e=..&c=..` or `uid=..&ctr=..&cmac=..`). `ctr` is the
3-byte read counter as the tag mirrors it: 6 hex digits, most significant first.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.api.ingest import IdempotencyKey, result, submit_one
from adapters.api.models import Accepted, PresenceEventOut, event_out
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.codecs.nfc_sun import SunMessage
from adapters.codecs.pings import parse_ts
from adapters.services.proximity import TAPS, TapOutcome
from geo_engine.proximity_ports import Conflict, NfcTag, canonical_hex
from geofences.model import FenceKind

router = APIRouter(prefix="/v1", tags=["nfc"], responses=ERROR_RESPONSES)
Manager = Annotated[Principal, Depends(require(Role.STAFF))]
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]
Id = Annotated[str, Field(min_length=1, max_length=128)]


class SunKeys(BaseModel):
    file_read_key: str = Field(description="K_SDMFileRead, AES-128 as 32 hex digits: the CMAC")
    meta_read_key: str | None = Field(
        None, description="K_SDMMetaRead, 32 hex digits: to decrypt PICCData (e=/picc_data=)"
    )


class TagIn(BaseModel):
    id: Id = Field(description="The tag id the app reports")
    geofence_id: Id = Field(description="Its store fence, or its zone (the store is implied)")
    uid: str | None = Field(None, description="7-byte UID (hex) a SUN message must carry")
    sun: SunKeys | None = Field(None, description="NTAG 424 DNA SUN keys: taps must verify")
    placement: str | None = Field(None, max_length=500, description="Where it is, in words")
    metadata: dict[str, Any] = Field(default_factory=dict)


class TagOut(BaseModel):
    id: str
    geofence_id: str
    store_id: str | None
    uid: str | None
    sun: bool = Field(description="Taps must carry a SUN message that verifies (keys not shown)")
    decrypts_picc_data: bool
    last_counter: int | None
    placement: str | None
    metadata: dict[str, Any]
    created_at: datetime | None


class TagList(BaseModel):
    tags: list[TagOut]


class TapIn(BaseModel):
    device_id: Id | None = Field(None, description="Resolved to its linked customer, if any")
    customer_id: Id | None = Field(None, description="One of device_id or customer_id")
    tag_id: Id
    ts: float | str = Field(description="Unix seconds, or ISO 8601 with an offset")
    sun: dict[str, Any] | str | None = Field(
        None,
        description='{"picc_data"|"e", "cmac"|"c"} or {"uid", "ctr", "cmac"}, or the SUN URL '
        "(or its query string)",
    )


class TapOut(BaseModel):
    id: int
    tag_id: str
    customer_id: str
    ts: datetime
    verified: bool = Field(description="A SUN message was verified (CMAC, fresh counter)")
    counter: int | None
    flag: str | None = Field(description="late: recorded, but older than what is known")
    events: list[PresenceEventOut]


def _out(t: NfcTag) -> TagOut:
    return TagOut(
        id=t.id,
        geofence_id=t.geofence_id,
        store_id=t.store_id,
        uid=t.uid,
        sun=t.sun_file_key is not None,
        decrypts_picc_data=t.sun_meta_key is not None,
        last_counter=t.last_counter,
        placement=t.placement,
        metadata=t.metadata,
        created_at=t.created_at,
    )


def _hex(value: str, n_bytes: int, field: str) -> bytes:
    try:
        return bytes.fromhex(canonical_hex(value, n_bytes))
    except ValueError as exc:
        raise field_error(422, field, str(exc)) from None


async def _owned(svc: Svc, p: Principal, tag_id: str) -> NfcTag:
    tag = await svc.proximity.tags.get(tag_id)
    if tag is None:
        raise field_error(404, "id", f"no NFC tag {tag_id!r}")
    if not p.may_manage_store(tag.store_id):
        raise ApiError(403, f"this key may not manage NFC tags of store {tag.store_id!r}")
    return tag


@router.post("/nfc-tags", status_code=201, summary="Register an NFC tag in a store or zone")
async def create_tag(body: TagIn, svc: Svc, p: Manager) -> TagOut:
    fence = await svc.fences.get(body.geofence_id)
    if fence is None:
        raise field_error(422, "geofence_id", f"no geofence {body.geofence_id!r}")
    if fence.kind not in (FenceKind.STORE, FenceKind.ZONE):
        raise field_error(422, "geofence_id", f"must be a store or a zone, not a {fence.kind}")
    if not p.may_manage_store(fence.store_id):
        raise ApiError(403, f"this key may not manage NFC tags of store {fence.store_id!r}")
    uid = None if body.uid is None else _hex(body.uid, 7, "uid").hex()
    file_key = meta_key = None
    if body.sun is not None:
        file_key = _hex(body.sun.file_read_key, 16, "sun.file_read_key")
        if body.sun.meta_read_key is not None:
            meta_key = _hex(body.sun.meta_read_key, 16, "sun.meta_read_key")
    tag = NfcTag(
        id=body.id,
        geofence_id=body.geofence_id,
        uid=uid,
        sun_file_key=file_key,
        sun_meta_key=meta_key,
        placement=body.placement,
        metadata=body.metadata,
    )
    try:
        await svc.proximity.tags.create(tag)
    except Conflict as exc:
        raise field_error(409, exc.field, exc.reason) from None
    return _out(await _owned(svc, p, body.id))


@router.get("/nfc-tags", summary="List NFC tags, by store")
async def list_tags(
    svc: Svc, p: Manager, store_id: Annotated[str | None, Query(max_length=128)] = None
) -> TagList:
    if p.role is Role.STAFF and store_id is not None and store_id not in p.store_ids:
        raise ApiError(403, f"this key may not read NFC tags of store {store_id!r}")
    tags = await svc.proximity.tags.find(store_id)
    if p.role is Role.STAFF:
        tags = [t for t in tags if t.store_id in p.store_ids]
    return TagList(tags=[_out(t) for t in tags])


@router.get("/nfc-tags/{tag_id}", summary="Read one NFC tag")
async def get_tag(tag_id: str, svc: Svc, p: Manager) -> TagOut:
    return _out(await _owned(svc, p, tag_id))


@router.delete("/nfc-tags/{tag_id}", status_code=204, summary="Remove an NFC tag and its taps")
async def delete_tag(tag_id: str, svc: Svc, p: Manager) -> Response:
    await _owned(svc, p, tag_id)
    await svc.proximity.tags.delete(tag_id)
    return Response(status_code=204)


# -- taps -----------------------------------------------------------------------------------------

_ALIASES = {"e": "picc_data", "picc_data": "picc_data", "c": "cmac", "cmac": "cmac"}


def parse_sun(raw: dict[str, Any] | str) -> SunMessage:
    """The SUN parameters of a tap, from an object or a URL / query string (422 if malformed)."""
    if isinstance(raw, str):
        query = urlsplit(raw).query if "?" in raw else raw
        params: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
    else:
        params = dict(raw)
    if "enc" in params:
        raise field_error(422, "sun.enc", "SUN with encrypted file data is not supported")
    got = {_ALIASES.get(k, k): v for k, v in params.items()}
    unknown = sorted(set(got) - {"picc_data", "cmac", "uid", "ctr"})
    if unknown:
        raise field_error(422, f"sun.{unknown[0]}", "unknown SUN parameter")
    for name in got:
        if name != "ctr" and not isinstance(got[name], str):
            raise field_error(422, f"sun.{name}", "must be a hex string")
    if "cmac" not in got:
        raise field_error(422, "sun.cmac", "required field is missing")
    cmac = _hex(got["cmac"], 8, "sun.cmac")
    if "picc_data" in got:
        return SunMessage(cmac, picc_data=_hex(got["picc_data"], 16, "sun.picc_data"))
    if "uid" not in got or "ctr" not in got:
        raise field_error(422, "sun", "needs picc_data (e), or uid and ctr")
    ctr = got["ctr"]
    if isinstance(ctr, bool) or not isinstance(ctr, int | str):
        raise field_error(422, "sun.ctr", "must be 6 hex digits (or an integer)")
    counter = ctr if isinstance(ctr, int) else int.from_bytes(_hex(ctr, 3, "sun.ctr"), "big")
    if not 0 <= counter < 1 << 24:
        raise field_error(422, "sun.ctr", "a 24-bit read counter: 0..16777215")
    return SunMessage(cmac, uid=_hex(got["uid"], 7, "sun.uid"), counter=counter)


@router.post(
    "/nfc-taps",
    status_code=201,
    response_model=TapOut,
    responses={202: {"model": Accepted, "description": "Durable, not applied in time"}},
    summary="Record an NFC tap: in-store presence",
)
async def post_tap(
    body: TapIn, request: Request, svc: Svc, principal: Ingest, _key: IdempotencyKey = None
) -> Response:
    """201 once its store's owner applied it (a tap is interactive: its reply carries the
    verification and the events); 202 when that took longer than the wait: it is durable in
    the log and applies."""
    s = svc.settings
    try:
        if body.customer_id is None and body.device_id is None:
            raise field_error(422, "device_id", "one of device_id or customer_id is required")
        try:
            ts = parse_ts(body.ts)
        except ValueError as exc:
            raise field_error(422, "ts", str(exc)) from None
        now = time.time()
        if ts > now + s.max_future_skew_s:
            raise field_error(422, "ts", f"more than {s.max_future_skew_s:.0f} s in the future")
        if ts < now - s.max_past_age_s:
            raise field_error(422, "ts", f"older than the {s.max_past_age_s:.0f} s accepted")
        sun = None if body.sun is None else parse_sun(body.sun)
    except ApiError:
        TAPS.labels("rejected").inc()
        raise
    cid = body.customer_id or svc.runtime.customer_for(body.device_id or "")
    cmd = c.NfcTap(cid, body.device_id, body.tag_id, ts, sun)
    reply = await submit_one(svc, request, principal, cid, cmd)
    if reply is None:
        return JSONResponse({"accepted": 1, "rejected": []}, 202)
    out = result(reply, TapOutcome)
    tap = TapOut(
        id=out.id,
        tag_id=body.tag_id,
        customer_id=cid,
        ts=datetime.fromtimestamp(ts, UTC),
        verified=out.verified,
        counter=out.counter,
        flag=out.flag,
        events=[event_out(i, e) for i, e in out.events],
    )
    return JSONResponse(tap.model_dump(mode="json"), 201)
