"""Twilio's callbacks: message status (`POST /v1/callbacks/twilio/status`) and incoming SMS
(`POST /v1/callbacks/twilio/inbound`). Authenticated by Twilio's `X-Twilio-Signature`, not by
an API key: missing → 401, wrong → 403, and nothing changes.

The signature covers the public URL Twilio called: `twilio_status_callback` /
`twilio_inbound_url` when set (behind a proxy, set them), else this request's URL, rebuilt from
X-Forwarded-Proto/Host only when `twilio_trust_forwarded` says the proxy can be trusted."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from adapters.api.deps import Svc
from adapters.api.errors import ERROR_RESPONSES, ApiError, field_error
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.inbound import InboundSms
from adapters.delivery.status import DeliveryStatuses
from adapters.delivery.twilio_signature import is_valid
from geo_engine.delivery.status import RANK

router = APIRouter(prefix="/v1/callbacks/twilio", tags=["delivery"], responses=ERROR_RESPONSES)

FORM = "application/x-www-form-urlencoded"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_SID = 64  # Twilio sids are 34 characters


def _form_doc(required: list[str], fields: dict[str, str]) -> dict[str, Any]:
    props = {name: {"type": "string", "description": d} for name, d in fields.items()}
    schema = {"type": "object", "required": required, "properties": props}
    return {
        "requestBody": {"required": True, "content": {FORM: {"schema": schema}}},
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "base64 HMAC-SHA1 (auth token) of the URL + sorted params",
            }
        ],
    }


class StatusOut(BaseModel):
    message_sid: str
    outbox_id: int
    delivery_status: str  # the row's status after this callback
    applied: bool  # False: older than what is recorded (logged, not applied)


def _public_url(request: Request, configured: str | None, trust_forwarded: bool) -> str:
    if configured:
        return configured
    url = request.url
    if trust_forwarded:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if proto:
            url = url.replace(scheme=proto)
        if host:
            url = url.replace(netloc=host)
    return str(url)


async def _verified_form(request: Request, svc: Svc, configured_url: str | None) -> dict[str, str]:
    """The form's fields (first value of each) once the signature is checked."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ApiError(401, f"missing {SIGNATURE_HEADER}: only Twilio may call this")
    token = svc.settings.twilio_auth_token.get_secret_value()
    if not token:
        raise ApiError(403, "Twilio callbacks are refused: no Twilio auth token is configured")
    pairs: list[tuple[str, str]] = []
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM:
        raw = (await request.body()).decode("utf-8", errors="replace")
        pairs = parse_qsl(raw, keep_blank_values=True)
    url = _public_url(request, configured_url, svc.settings.twilio_trust_forwarded)
    if not is_valid(token, url, pairs, signature):
        raise ApiError(403, f"{SIGNATURE_HEADER} does not match this request")
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise field_error(422, name, "required")
    if len(value) > MAX_SID and name.endswith("Sid"):
        raise field_error(422, name, f"longer than {MAX_SID} characters")
    return value


def _error_code(form: dict[str, str]) -> int | None:
    raw = form.get("ErrorCode", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= 2**31:
        raise field_error(422, "ErrorCode", f"not a Twilio error code: {raw[:20]!r}")
    return int(raw)


@router.post(
    "/status",
    response_model=StatusOut,
    summary="Twilio message status callback (signed)",
    description=(
        "Records the delivery status of the outbox row whose provider id is `MessageSid`;"
        " statuses only move forward, every callback is logged. ErrorCode 21610 revokes the"
        " customer's SMS consent; 30006 marks the number invalid. 401 unsigned, 403 bad"
        " signature, 404 unknown MessageSid, 422 naming a missing or unknown field."
    ),
    openapi_extra=_form_doc(
        ["MessageSid", "MessageStatus"],
        {
            "MessageSid": "the message (the outbox row's provider_id)",
            "MessageStatus": "queued, sending, sent, delivered, undelivered, failed, read...",
            "ErrorCode": "Twilio's error code, if any",
            "AccountSid": "the account",
            "To": "the recipient",
            "From": "the sender",
        },
    ),
)
async def twilio_status(request: Request, svc: Svc) -> StatusOut:
    form = await _verified_form(request, svc, svc.settings.twilio_status_callback)
    sid = _required(form, "MessageSid")
    status = _required(form, "MessageStatus").lower()
    if status not in RANK:
        known = ", ".join(sorted(RANK))
        raise field_error(422, "MessageStatus", f"unknown status {status[:30]!r} ({known})")
    code = _error_code(form)
    statuses = DeliveryStatuses(svc.pool, DeliveryDirectory(svc.pool, svc.ingest))
    deadline = time.monotonic() + svc.settings.twilio_status_wait_s
    while (done := await statuses.record(sid, status, code, form.get("To") or None)) is None:
        # the relay commits a batch's sids after the whole batch is sent: Twilio's first
        # callbacks can come sooner, and Twilio does not retry a refused one
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    if done is None:
        raise ApiError(404, f"no message with MessageSid {sid!r} was sent by this engine")
    return StatusOut(
        message_sid=sid, outbox_id=done.outbox_id, delivery_status=done.status, applied=done.applied
    )


@router.post(
    "/inbound",
    response_class=Response,
    summary="Twilio incoming SMS (signed): STOP / START keywords",
    description=(
        "An SMS a customer sent: opt-out keywords (STOP, UNSUBSCRIBE, ARRÊT, STOP SMS,"
        " DÉSABONNER...) revoke the SMS consent of the customer owning the number at once;"
        " START, YES, UNSTOP grant it. Answers an empty TwiML `<Response/>` (Twilio's Advanced"
        " Opt-Out sends the confirmation), also for a number nobody owns. 401 unsigned, 403 bad"
        " signature, 422 naming a missing field."
    ),
    responses={200: {"description": "empty TwiML", "content": {"text/xml": {}}}},
    openapi_extra=_form_doc(
        ["MessageSid", "From"],
        {
            "MessageSid": "the incoming message",
            "From": "the sender's number (E.164)",
            "To": "our number",
            "Body": "the text",
            "AccountSid": "the account",
        },
    ),
)
async def twilio_inbound(request: Request, svc: Svc) -> Response:
    form = await _verified_form(request, svc, svc.settings.twilio_inbound_url)
    sid = _required(form, "MessageSid")
    sender = _required(form, "From")
    inbound = InboundSms(svc.pool, DeliveryDirectory(svc.pool, svc.ingest))
    await inbound.handle(sid, sender, form.get("Body", ""))
    return Response(TWIML_EMPTY, media_type="text/xml")
