"""One JSON error format for every service:

    {"error": {"code": "invalid_argument", "message": "...", "param": "limit",
               "request_id": "..."}}

No input may produce a 500: validation, auth, missing routes and unavailable
dependencies all map to a 4xx or 503 with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.api_core import exceptions as gexc
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flokraft_core.logs import get_logger

log = get_logger(__name__)

# Google client errors that mean "the database or broker is not there right now".
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.RetryError,
    gexc.InternalServerError,
    gexc.Unknown,
    TimeoutError,
)


class ErrorCode(StrEnum):
    """Every `error.code` either API answers. A generated client can switch on it; the
    test tests/core/test_error_codes.py keeps it in step with the codes the sources
    raise (an unknown code raises ValueError here rather than reach a client)."""

    INVALID_ARGUMENT = "invalid_argument"  # 400, 422: `param` names what is wrong
    UNAUTHENTICATED = "unauthenticated"  # 401
    PERMISSION_DENIED = "permission_denied"  # 403
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    ALREADY_QUEUED = "already_queued"  # 409: a rerun of queued or running work
    ALREADY_FINISHED = "already_finished"  # 409: a cancel (or an admin's fail) of finished work
    ANALYSIS_DELETED = "analysis_deleted"  # 410: an Idempotency-Key of a deleted analysis
    REQUEST_IN_PROGRESS = "request_in_progress"  # 409: the Idempotency-Key is in flight
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413
    HEADER_TOO_LARGE = "header_too_large"  # 431, from the HTTP protocol (web.http_protocol)
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"  # 422: same key, different body
    RATE_LIMITED = "rate_limited"  # 429
    TOO_MANY_ACTIVE = "too_many_active"  # 429: MAX_ACTIVE_ANALYSES_PER_USER
    TOO_MANY_STREAMS = "too_many_streams"  # 429 or 503: event stream caps
    UNAVAILABLE = "unavailable"  # 503
    INTERNAL = "internal"  # 500: never meant to happen
    HTTP_ERROR = "http_error"  # any other status Starlette raises


class Problem(BaseModel):
    param: str
    message: str


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str
    param: str | None = None
    request_id: str | None = None
    details: list[Problem] | None = Field(None, description="Every invalid part, on a 422.")
    status: str | None = Field(None, description="Current status, on 409 for a busy analysis.")
    generation: int | None = None


class ErrorBody(BaseModel):
    """The OpenAPI model of every error answer (see `error_body`)."""

    error: ErrorDetail


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": schema}


# The headers error answers carry, by status (429 and 503 always say when to come back).
RETRY_AFTER: Final = _header(
    "Seconds to wait before retrying.", {"type": "string", "pattern": "^[0-9]+$"}
)
ERROR_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": _header(
            'RFC 6750 challenge: `Bearer error="invalid_token", error_description="..."`.',
            {"type": "string"},
        )
    },
    429: {"Retry-After": {**RETRY_AFTER, "required": True}},
    503: {"Retry-After": {**RETRY_AFTER, "required": True}},
}


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses, each with the ErrorBody model and
    the headers the status carries."""
    return {
        status: {
            "model": ErrorBody,
            "description": description,
            **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {}),
        }
        for status, description in descriptions.items()
    }


# What every authenticated route of both APIs may answer; routes add their own statuses.
STANDARD_ERRORS: dict[int | str, dict[str, Any]] = error_responses(
    {
        401: "Missing, expired, badly signed or wrong-audience bearer token.",
        413: "The request body is larger than MAX_BODY_BYTES (refused before it is read).",
        422: "A parameter or the body is invalid; `error.param` names it.",
        429: "Rate limit exceeded; see Retry-After.",
        503: "Firestore, Pub/Sub or the token keys are unavailable; retry shortly.",
    }
)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: ErrorCode | str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = ErrorCode(code)
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


# Seconds a client waits after a 503 of a dependency that is down or not yet loaded.
UNAVAILABLE_RETRY_AFTER: Final = 5


def unavailable(message: str) -> ApiError:
    """503 with Retry-After: a backing service (or this replica's start-up) is not there."""
    return ApiError(
        503, "unavailable", message, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
    )


def error_body(
    request: Request,
    code: ErrorCode | str,
    message: str,
    *,
    param: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": ErrorCode(code).value, "message": message}
    if param is not None:
        error["param"] = param
    error.update(extra)
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        error["request_id"] = request_id
    return {"error": error}


def _param_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("query", "limit") -> "limit"; ("body", "video_url") -> "video_url"; ("body",) -> "body"
    parts = [str(p) for p in loc[1:]] or [str(loc[0])] if loc else ["request"]
    return ".".join(parts)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(request, exc.code, exc.message, param=exc.param, **exc.extra),
        status_code=exc.status,
        headers=exc.headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"param": _param_name(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    first = problems[0] if problems else {"param": "request", "message": "invalid request"}
    return JSONResponse(
        error_body(
            request,
            "invalid_argument",
            f"{first['param']}: {first['message']}",
            param=first["param"],
            details=problems,
        ),
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: ErrorCode.NOT_FOUND,
        405: ErrorCode.METHOD_NOT_ALLOWED,
        413: ErrorCode.PAYLOAD_TOO_LARGE,
    }.get(exc.status_code, ErrorCode.HTTP_ERROR)
    return JSONResponse(
        error_body(request, code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
    return await _api_error(
        request, unavailable("a backing service is unavailable; try again shortly")
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=type(exc).__name__)
    return JSONResponse(
        error_body(request, "internal", "internal error"),
        status_code=500,
    )


class UnexpectedErrorMiddleware:
    """Answers an unhandled exception with the JSON 500 from inside the app's middleware.

    Starlette sends a handler registered for `Exception` from its outermost middleware,
    outside CORS, so the browser saw an opaque network error instead of a readable 500.
    Installed inside CORS, this answers first; the `Exception` handler stays as the last
    resort for anything raised outside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late to answer: the server cuts the connection
                raise
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(exc_type, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
