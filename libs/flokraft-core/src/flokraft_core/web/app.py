"""The app factory every service uses: logging, request ids, errors, metrics, health,
token verification and rate limits, wired the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from flokraft_core.auth import TokenVerifier
from flokraft_core.logs import configure_logging
from flokraft_core.memory import export_memory_limit, log_memory_forever
from flokraft_core.readiness import DependencyMonitor, LoopMonitor
from flokraft_core.settings import CoreSettings, HttpServiceSettings
from flokraft_core.store.read_costs import bind_route, set_service
from flokraft_core.web.cors import install_cors, served_methods
from flokraft_core.web.drain import CloseWhileDraining, Drain
from flokraft_core.web.errors import (
    ERROR_HEADERS,
    UnexpectedErrorMiddleware,
    install_error_handlers,
)
from flokraft_core.web.forwarded import ForwardedClientMiddleware, parse_networks
from flokraft_core.web.guard import RequestGuard
from flokraft_core.web.health import LivenessCheck, PodCheck, health_router
from flokraft_core.web.rate_limit import RateLimiter
from flokraft_core.web.request_context import RequestContextMiddleware

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# A shared dependency's check (one cheap call), run by the DependencyMonitor, never by a
# probe.
DependencyCheck = Callable[[FastAPI], Awaitable[None]]

_NOT_INSTRUMENTED = ["/metrics", "/healthz", "/readyz"]
# Per-handler latency buckets fine enough to see the list's 100 ms target and the
# rerun's 50 ms aim (the instrumentator's default is 0.1, 0.5, 1 s).
_HANDLER_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


async def _label_reads(request: Request) -> None:
    # Async on purpose: a sync dependency runs in a worker thread, whose context copy
    # would not carry the label back to the route.
    route = request.scope.get("route")
    bind_route(getattr(route, "path", "other"))


def create_service_app(
    settings: CoreSettings,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter] = (),
    lifespan: Lifespan | None = None,
    readiness: Mapping[str, PodCheck] | None = None,
    dependencies: Mapping[str, DependencyCheck] | None = None,
    liveness: LivenessCheck | None = None,
    uninstrumented_paths: Sequence[str] = (),
) -> FastAPI:
    """`readiness`: the service's own checks of this pod (local, no I/O), added to the
    shared ones (started, signing keys, not draining, event loop). `dependencies`: shared
    dependencies, checked in the background for metrics and logs, never by a probe."""
    configure_logging(settings.service_name, settings.log_level, log_format=settings.log_format)
    export_memory_limit(settings.memory_limit_bytes)
    set_service(settings.service_name)
    drain = Drain()
    started = threading.Event()  # the lifespan's start-up is done
    loop_monitor = LoopMonitor(max_lag=settings.readiness_max_loop_lag_seconds)
    monitor = DependencyMonitor(
        {},
        interval=settings.dependency_check_interval_seconds,
        timeout=settings.readiness_timeout_seconds,
    )

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        if isinstance(settings, HttpServiceSettings):
            app.state.verifier = TokenVerifier(settings)
            app.state.rate_limiter = RateLimiter(
                settings.rate_limit, settings.rate_limit_storage_uri, settings.service_name
            )
            app.state.ip_rate_limiter = RateLimiter(
                settings.rate_limit_per_ip,
                settings.rate_limit_storage_uri,
                f"{settings.service_name}-ip",
            )
            # Fetched now, in the background: readiness waits for the keys, a probe never does.
            app.state.verifier.keys.refresh_soon()
        memory_task = asyncio.create_task(log_memory_forever(settings.memory_log_interval_seconds))
        loop_monitor.start()
        try:
            service: AbstractAsyncContextManager[None] = (
                contextlib.nullcontext() if lifespan is None else lifespan(app)
            )
            async with service:
                # Bound to the app only now: the checks use what the lifespan built.
                monitor.set_checks({name: _bound(check, app) for name, check in shared.items()})
                monitor.start()
                started.set()
                try:
                    yield
                finally:
                    await monitor.stop()
        finally:
            await loop_monitor.stop()
            memory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await memory_task

    checks: dict[str, PodCheck] = {
        "started": lambda _: None if started.is_set() else "starting",
        "draining": lambda _: "draining: SIGTERM received" if drain.draining else None,
        "event_loop": lambda _: loop_monitor.problem(),
    }
    shared = dict(dependencies or {})
    if isinstance(settings, HttpServiceSettings):
        checks["auth_keys"] = _signing_keys_loaded
        shared["jwks"] = _signing_keys_fresh
    checks.update(readiness or {})

    app = FastAPI(
        title=title,
        description=description,
        # The service's package version, which the chart's appVersion matches
        # (tests/deploy/test_versions.py).
        version=version,
        lifespan=app_lifespan,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(_label_reads)],
    )
    # Read by the server (web.server.serve) that runs this app: its SIGTERM begins the drain.
    app.state.drain = drain
    install_error_handlers(app)
    app.include_router(health_router(checks, monitor, liveness))
    for router in routers:
        app.include_router(router)
    if isinstance(settings, HttpServiceSettings):
        _document_guard_answers(app)
        # It answers 401/413/429 by itself, so it sits inside CORS (added first).
        app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
        # A 500 answered here (not by Starlette's outermost ServerErrorMiddleware) passes
        # through CORS like every other answer.
        app.add_middleware(UnexpectedErrorMiddleware)
        # Inside the metrics middleware, so preflights are counted like any request; any
        # middleware that answers by itself must be added before this, or its answers
        # reach the browser without CORS headers (unreadable to the frontend).
        install_cors(app, settings, served_methods(routers))
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=[
            *_NOT_INSTRUMENTED,
            *(f"^{re.escape(path)}$" for path in uninstrumented_paths),
        ],
    ).add(metrics.default(latency_lowr_buckets=_HANDLER_LATENCY_BUCKETS)).instrument(app).expose(
        app, include_in_schema=False
    )
    # Outermost, so the request id is bound before anything else logs.
    app.add_middleware(RequestContextMiddleware)
    if isinstance(settings, HttpServiceSettings) and settings.forwarded_allow_ips:
        # Before everything that keys on the client's address.
        app.add_middleware(
            ForwardedClientMiddleware,
            trusted=parse_networks(settings.forwarded_allow_ips),
            position=settings.forwarded_for_client_position,
        )
    # Around everything: every answer during the drain, errors included, closes its
    # connection.
    app.add_middleware(CloseWhileDraining, drain=drain)
    return app


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its function's name in lowerCamelCase
    (`list_analyses` -> `listAnalyses`), the names client generators turn into methods.
    FastAPI's default adds the path and method (`list_analyses_analyses_get`)."""
    first, *rest = route.name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _bound(check: DependencyCheck, app: FastAPI) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await check(app)

    return run


def _signing_keys_loaded(app: FastAPI) -> str | None:
    verifier: TokenVerifier = app.state.verifier
    return verifier.keys.missing()


async def _signing_keys_fresh(app: FastAPI) -> None:
    """The issuer's JWKS endpoint as a shared dependency: no call of its own (the keys
    refresh in the background), only whether the last good fetch is too old."""
    verifier: TokenVerifier = app.state.verifier
    problem = verifier.keys.problem()
    if problem:
        raise LookupError(problem)


def _document_guard_answers(app: FastAPI) -> None:
    """The guard answers 413 (and 429 per IP) on any route: say so in the OpenAPI, with
    the error model the route already declares for its other errors."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        model = next((r["model"] for r in route.responses.values() if "model" in r), None)
        for status, description in (
            (413, "The request body is too large."),
            (429, "Rate limit hit; see Retry-After."),
        ):
            answer: dict[str, Any] = {"description": description}
            if status in ERROR_HEADERS:
                answer["headers"] = ERROR_HEADERS[status]
            if model is not None:
                answer["model"] = model
            route.responses.setdefault(status, answer)
