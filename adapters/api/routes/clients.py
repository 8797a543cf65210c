"""Real mobile clients, unmodified: OwnTracks in HTTP mode (`POST /v1/owntracks`) and Traccar
Client / OsmAnd (`GET|POST /v1/osmand`). The parsers live in adapters/codecs; every fix goes
through the same pipeline as `POST /v1/pings` (runtime.ingest): same checks, same flags, same
presence events.

The two clients are answered differently on bad input, on purpose:
- OwnTracks resends whatever is not answered 2xx, forever. Bad input is answered 200 `[]`,
  dropped and counted (geo_client_messages_ignored_total); only auth failures get a 401/403,
  which the app shows to its user.
- Traccar's own server never acknowledges a malformed report (it closes the connection), and
  answers an unknown device 400: here a bad value is a 400 naming the field. A well-formed fix we
  cannot use (valid=false, no coordinates, outside the accepted time window) is a 200 listing it
  under `rejected`, since resending it could never help.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request, Response
from prometheus_client import Counter

from adapters import metrics
from adapters.api.deps import Svc
from adapters.api.errors import ERROR_RESPONSES, ApiError, FieldError, field_error
from adapters.api.ingest import Wait, merged_ingest, ping_parts
from adapters.api.models import PingBatchResult
from adapters.auth import Principal, Role
from adapters.cluster import commands as c
from adapters.codecs import osmand, owntracks
from adapters.codecs.client_values import ClientParseError, TimeWindow, decode_json
from adapters.composition import Services
from adapters.services.presence import IngestResult
from geo_engine.models import FixFlag

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["mobile clients"], responses=ERROR_RESPONSES)

MESSAGES = Counter(
    "geo_client_messages_total",
    "Messages from mobile client protocols, by client, message type and outcome",
    ["client", "type", "outcome"],
)
IGNORED = Counter(
    "geo_client_messages_ignored_total",
    "Client messages acknowledged but not used, by reason",
    ["client", "reason"],
)

_BASIC = {"WWW-Authenticate": 'Basic realm="geo-engine"'}
_BEARER = {"WWW-Authenticate": "Bearer"}
_EMPTY = b"[]"


def _presented_key(request: Request) -> str | None:
    """The API key in `Authorization`: Basic with the key as password (what OwnTracks and a
    URL's user:key@ send), or Bearer."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


async def _ingest_principal(svc: Services, key: str | None, challenge: dict[str, str]) -> Principal:
    if not key:
        raise ApiError(401, "missing API key: send an ingest key", headers=challenge)
    found = await svc.keys.principal(key)
    if found is None:
        raise ApiError(401, "unknown or revoked API key", headers=challenge)
    if found.role not in (Role.ADMIN, Role.INGEST):
        raise ApiError(403, f"role {found.role} may not send locations (allowed: admin, ingest)")
    return found


# --- OwnTracks ---------------------------------------------------------------------------------


@router.post(
    "/owntracks",
    summary="OwnTracks HTTP mode: one message per request",
    description=(
        "Configure the app in HTTP mode with this URL; HTTP Basic auth, the password being an"
        " `ingest` API key. Sender: `X-Limit-U`/`X-Limit-D` (or `?u=&d=`), else the payload's"
        " `topic`; device id = `user/device`. `location` is a ping; `transition` is recorded as"
        " the app's view (no presence event); `beacon` is recorded; any other `_type` is"
        " acknowledged and ignored. Always 200 with a JSON array, bad input included (dropped"
        " and counted), because the app resends anything else forever; 401/403 on auth only."
    ),
    responses={200: {"content": {"application/json": {"example": []}}}},
)
async def post_owntracks(request: Request, svc: Svc) -> Response:
    try:
        principal = await _ingest_principal(svc, _presented_key(request), _BASIC)
    except ApiError:
        MESSAGES.labels("owntracks", "unknown", "unauthorized").inc()
        raise
    body = await request.body()
    s, h, q = svc.settings, request.headers, request.query_params
    window = TimeWindow(time.time(), s.max_future_skew_s, s.max_past_age_s)
    kind = "unknown"
    try:
        payload = decode_json(body)
        kind = owntracks.type_label(payload)
        parsed = owntracks.parse(
            payload,
            user=h.get("x-limit-u") or q.get("u"),
            device=h.get("x-limit-d") or q.get("d"),
            window=window,
        )
    except ClientParseError as exc:
        log.info("owntracks %s message dropped: %s (%s)", kind, exc, exc.code)
        _count("owntracks", kind, "ignored", exc.code)
        if kind == "location":
            metrics.PINGS.labels("rejected").inc()
        return _array()
    msg, device_id = parsed.message, parsed.device_id
    # the app resends a message until it gets a 200: the same message, the same log key
    digest = hashlib.sha256((device_id or "").encode() + b"\n" + body).hexdigest()
    key = f"{principal.key_id}.ot.{digest}"
    parts: dict[int, c.Command] = {}
    if isinstance(msg, owntracks.Location):
        parts = dict(ping_parts(svc, msg.pings))
        outcome = "accepted"
    elif device_id is not None and isinstance(msg, owntracks.Transition | owntracks.Beacon):
        cid = svc.runtime.customer_for(device_id)
        cmd: c.Command = (
            c.OwnTracksTransition(device_id, cid, msg)
            if isinstance(msg, owntracks.Transition)
            else c.OwnTracksBeacon(device_id, cid, msg)
        )
        parts = {svc.ingest.partition(cid): cmd}
        outcome = "accepted"
    else:
        outcome = "ignored"  # lwt, waypoint(s), card, cmd, steps, encrypted, status, ...
        IGNORED.labels("owntracks", f"type_{kind}").inc()
    if parts:
        # one fix per request from a phone: answered once applied (bounded by the wait), so
        # the app's next request already sees its effect
        done = await svc.ingest.submit(parts, key=key, wait=True)
        outcome = "duplicate" if done.resent else outcome
    MESSAGES.labels("owntracks", kind, outcome).inc()
    return _array()


def _array() -> Response:
    return Response(_EMPTY, media_type="application/json")


def _count(client: str, kind: str, outcome: str, reason: str) -> None:
    MESSAGES.labels(client, kind, outcome).inc()
    IGNORED.labels(client, reason).inc()


# --- Traccar Client / OsmAnd -------------------------------------------------------------------


_OSMAND_DOC: dict[str, Any] = {
    "summary": "Traccar Client / OsmAnd protocol",
    "description": (
        "Query string or form body (`id`, `lat`, `lon`, `timestamp`, `speed` in knots, ...), or"
        " the Traccar Client JSON (`Content-Type: application/json`). The device must be linked"
        " to a customer, or the request carries an ingest key (`Authorization: Bearer`, or"
        " Basic with the key as password). 200 when the report is taken (unusable fixes are"
        " listed under `rejected`); 400 naming the field for a missing id or a bad value;"
        " 401 for an unknown device without a key."
    ),
    "response_model": PingBatchResult,
}


@router.api_route("/osmand/", methods=["GET", "POST"], include_in_schema=False)
@router.get("/osmand", operation_id="osmand_report_get", **_OSMAND_DOC)
@router.post("/osmand", operation_id="osmand_report_post", **_OSMAND_DOC)
async def osmand_report(request: Request, svc: Svc, wait: Wait = True) -> Response:
    body = await request.body()
    is_json = request.headers.get("content-type", "").startswith("application/json")
    variant = "json" if is_json else "query"
    s = svc.settings
    try:
        # Traccar reads the form body only when the query string is empty
        req = osmand.read_json(body) if is_json else osmand.read_query(request.url.query or body)
        if req.device_id is None:
            field = "device_id" if is_json else "id"
            raise ClientParseError(field, "required: the device identifier", code="missing_id")
        await _osmand_auth(request, svc, req.device_id, "device_id" if is_json else "id")
        window = TimeWindow(time.time(), s.max_future_skew_s, s.max_past_age_s)
        fixes = osmand.decode(req, window, s.max_batch_size)
    except ClientParseError as exc:
        MESSAGES.labels("osmand", variant, "rejected").inc()
        metrics.PINGS.labels("rejected").inc()
        raise field_error(exc.status, exc.field, exc.reason, exc.index) from None
    except ApiError:
        MESSAGES.labels("osmand", variant, "unauthorized").inc()
        raise
    for d in fixes.dropped:
        IGNORED.labels("osmand", d.code).inc()
    metrics.PINGS.labels("rejected").inc(len(fixes.dropped))
    result: IngestResult | None = None
    outcome = "ignored"
    if fixes.pings.rows:
        # Traccar resends a report until it gets a 200: the same report, the same log key
        key = f"osmand.{hashlib.sha256(request.url.query.encode() + body).hexdigest()}"
        done = await svc.ingest.submit(ping_parts(svc, fixes.pings), key=key, wait=wait)
        outcome = "duplicate" if done.resent else "accepted"
        if done.resent:  # the log held this report already: each fix is a duplicate
            dup = [(i, FixFlag.DUPLICATE) for i in fixes.pings.row_index]
            result = IngestResult(len(fixes.pings.rows), dup, [])
        elif done.results:
            result = merged_ingest(done.results)
            if result.flags and all(f is FixFlag.DUPLICATE for _, f in result.flags):
                outcome = "duplicate"
    MESSAGES.labels("osmand", variant, outcome).inc()
    return Response(
        _osmand_body(fixes, result, len(fixes.pings.rows)), media_type="application/json"
    )


async def _osmand_auth(request: Request, svc: Services, device_id: str, field: str) -> None:
    """A presented key must be good; without one, the device must be linked to a customer."""
    if request.headers.get("authorization"):
        await _ingest_principal(svc, _presented_key(request), _BEARER)
        return
    if device_id in svc.runtime.device_links:
        return
    reason = (
        "unknown device: link it to a customer (POST /v1/identities/link) or send"
        " Authorization: Bearer <ingest key>"
    )
    raise ApiError(401, f"{field}: {reason}", [FieldError(field=field, reason=reason)], _BEARER)


def _osmand_body(fixes: osmand.OsmAndFixes, result: IngestResult | None, durable: int) -> bytes:
    """The shape of POST /v1/pings' reply: Traccar only looks at the status, people at this.
    Without ?wait=true (no `result`), `accepted` counts the fixes durable in the log."""
    flags = [] if result is None else result.flags
    events = [] if result is None else result.events
    out: dict[str, Any] = {
        "accepted": durable if result is None else result.accepted,
        "rejected": [
            {"index": d.index, "field": d.field, "reason": d.reason} for d in fixes.dropped
        ],
        "ignored": [{"index": i, "reason": str(f)} for i, f in flags]
        + ([] if result is None else [{"index": i, "reason": r} for i, r in result.dropped]),
        "events": [
            {
                "id": eid,
                "type": str(e.type),
                "customer_id": e.customer_id,
                "geofence_id": e.geofence_id,
                "ts": datetime.fromtimestamp(e.ts, UTC),
                "source": e.source,
                "reason": e.reason,
            }
            for eid, e in events
        ],
    }
    return msgspec.json.encode(out)
