"""CORS for the browser frontend, which is served from another origin than the APIs.

Starlette's CORSMiddleware does the work; this module fixes the policy:

- origins are an exact list plus an optional pattern (CORS_ALLOW_ORIGINS,
  CORS_ALLOW_ORIGIN_REGEX); no credentials mode, because the frontend authenticates with
  a bearer token, not cookies, so `*` never meets credentials;
- the middleware sits inside the app, before routing, so a preflight is answered before
  authentication and before the per-user rate limit (both are route dependencies), and
  every answer the routes and error handlers produce (304, 401, 404, 409, 413, 422, 429,
  503) carries the headers the browser needs to hand it to the script;
- the preflight is cached by the browser for two hours (Chromium's cap), so a poller pays
  for it once per URL, not once per poll;
- a request from an origin that is not allowed is served exactly as one without an
  `Origin` header: no CORS headers, no other change (the browser then blocks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from flokraft_core.settings import HttpServiceSettings

# Chromium caps Access-Control-Max-Age at two hours; Firefox at one day.
PREFLIGHT_MAX_AGE_SECONDS: Final = 7200

# What the frontend sends besides the CORS-safelisted headers (Content-Type is one of those,
# Starlette adds them): the token, the rerun-api's retry key, a conditional poll, and a
# request id the frontend may pass for tracing.
ALLOW_HEADERS: Final = ("Authorization", "Idempotency-Key", "If-None-Match", "X-Request-ID")

# Headers a cross-origin script may read: paging, revalidation, back-off, where a created
# analysis lives, the id to quote in a bug report, and whether an answer was a replay.
EXPOSE_HEADERS: Final = (
    "ETag",
    "Link",
    "X-Next-Page-Token",
    "Retry-After",
    "Location",
    "X-Request-ID",
    "Idempotent-Replayed",
)


class FrontendCORSMiddleware(CORSMiddleware):
    """Starlette's middleware, except that a disallowed origin is served as if it had sent
    no `Origin` at all. Starlette would add `Access-Control-Expose-Headers` to its answers
    and turn its preflights into 400s listing our methods and headers; the browser blocks
    them either way, and nothing needs telling to an origin we do not serve."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                scope = {
                    **scope,
                    "headers": [(k, v) for k, v in scope["headers"] if k != b"origin"],
                }
        await super().__call__(scope, receive, send)


def served_methods(routers: Iterable[APIRouter]) -> list[str]:
    """The methods the service's own routes answer (health and metrics are not for
    browsers), so a preflight only ever promises what exists."""
    methods = {
        method
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    return sorted(methods)


def install_cors(app: FastAPI, settings: HttpServiceSettings, methods: Sequence[str]) -> None:
    """Adds the middleware; with no origin configured there is nothing to allow, and the
    app stays exactly as it was."""
    if not settings.cors_allow_origins and settings.cors_allow_origin_regex is None:
        return
    app.add_middleware(
        FrontendCORSMiddleware,
        allow_origins=list(settings.cors_allow_origins),
        allow_origin_regex=settings.cors_allow_origin_regex,
        allow_methods=list(methods),
        allow_headers=list(ALLOW_HEADERS),
        allow_credentials=False,
        expose_headers=list(EXPOSE_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
