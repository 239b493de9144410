"""One JSON error format for every service:

    {"error": {"code": "invalid_argument", "message": "...", "param": "limit",
               "request_id": "..."}}

No input may produce a 500: validation, auth, missing routes and unavailable
dependencies all map to a 4xx or 503 with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


class Problem(BaseModel):
    param: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = None
    request_id: str | None = None
    details: list[Problem] | None = Field(None, description="Every invalid part, on a 422.")
    status: str | None = Field(None, description="Current status, on 409 for a busy analysis.")
    generation: int | None = None


class ErrorBody(BaseModel):
    """The OpenAPI model of every error answer (see `error_body`)."""

    error: ErrorDetail


def error_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses, each with the ErrorBody model."""
    return {
        status: {"model": ErrorBody, "description": description}
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
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def error_body(
    request: Request, code: str, message: str, *, param: str | None = None, **extra: Any
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
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
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        error_body(request, code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
    return JSONResponse(
        error_body(request, "unavailable", "a backing service is unavailable; try again shortly"),
        status_code=503,
        headers={"Retry-After": "5"},
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
