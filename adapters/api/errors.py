"""One error shape for every 4xx: a message, and each offending field with its reason."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.bus.nats_bus import BusUnavailable
from adapters.db.errors import UNAVAILABLE, UNSTORABLE

log = logging.getLogger(__name__)
RETRY_AFTER_S = 1  # a terminated backend is replaced at once; a restart takes seconds


class FieldError(BaseModel):
    field: str
    reason: str
    index: int | None = None  # the row or feature, for batch requests


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers


class Pending(Exception):
    """Durable in the log, not applied within the wait (or a resend the log already held):
    202 (adapters/api/ingest.py)."""

    def __init__(self, duplicate: bool = False) -> None:
        super().__init__("pending")
        self.duplicate = duplicate


def field_error(status: int, field: str, reason: str, index: int | None = None) -> ApiError:
    return ApiError(
        status, f"{field}: {reason}", [FieldError(field=field, reason=reason, index=index)]
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


def _body(detail: str, errors: list[FieldError]) -> dict[str, Any]:
    return ErrorBody(detail=detail, errors=errors).model_dump(exclude_none=True)


Answer = tuple[int, dict[str, Any], dict[str, str] | None]  # status, body, headers


def answer_of(exc: BaseException) -> Answer | None:
    """The API's answer to a refusal or an outage; None for a bug (a 500). Shared by the
    exception handlers below and the lean lane (adapters/api/lean.py)."""
    if isinstance(exc, ApiError):
        return exc.status, _body(exc.detail, exc.errors), exc.headers
    if isinstance(exc, BusUnavailable):
        log.warning("bus unavailable: %s", exc)
        reason = "the log (NATS) did not confirm; resend with the same Idempotency-Key"
        body = _body(reason, [FieldError(field="bus", reason="unavailable")])
        return 503, body, {"Retry-After": str(RETRY_AFTER_S)}
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable: %s", type(exc).__name__)  # the type: no data
        reason = "the database is unreachable; nothing was stored: retry"
        body = _body(reason, [FieldError(field="database", reason="unavailable")])
        return 503, body, {"Retry-After": str(RETRY_AFTER_S)}
    return None


async def _answered(_: Request, exc: Exception) -> JSONResponse:
    # async: Starlette runs a plain def handler in its thread pool
    answer = answer_of(exc)
    assert answer is not None  # registered for the exceptions answer_of knows only
    status, body, headers = answer
    return JSONResponse(body, status, headers=headers)


def install(app: FastAPI) -> None:
    for answered in (ApiError, BusUnavailable, *UNAVAILABLE):
        app.add_exception_handler(answered, _answered)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        ctype = request.headers.get("content-type", "")
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
            reason = str(e.get("msg")).removeprefix("Value error, ")  # pydantic's wrapper
            if not loc and e.get("loc", ())[:1] == ("body",) and "json" not in ctype:
                # curl -d sends a form by default: say what is expected, not pydantic's words
                got = ctype or "none"
                reason = f"expected a JSON body with Content-Type: application/json (got {got!r})"
            errors.append(FieldError(field=".".join(loc) or "body", reason=reason))
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors[:5])
        return JSONResponse(_body(detail, errors), 422)

    async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
        # the one place where any route's input meets PostgreSQL's types: a NUL or a lone
        # surrogate in text, an integer past int64. Input the client sent, so a 422, not a 500.
        reason = (
            "a value cannot be stored: text with NUL or invalid Unicode, or a number out of range"
        )
        return JSONResponse(_body(reason, [FieldError(field="body", reason=reason)]), 422)

    for unstorable in (*UNSTORABLE, UnicodeEncodeError, OverflowError):
        app.add_exception_handler(unstorable, _unstorable)

    @app.exception_handler(Pending)
    async def _pending(_: Request, exc: Pending) -> JSONResponse:
        body = {"accepted": 1, "rejected": [], "duplicate": exc.duplicate}
        return JSONResponse(body, 202)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _body(str(exc.detail), []), exc.status_code, headers=getattr(exc, "headers", None)
        )
