"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.drain import Drain, DrainingServer

# Without an API's settings (the analyzer's health server): the APIs' default bound.
_DEFAULT_MAX_HEADER_BYTES = 16384


def trusted_proxies(settings: HttpServiceSettings | None) -> list[str]:
    if settings is None:
        return []
    return [item.strip() for item in settings.forwarded_allow_ips.split(",") if item.strip()]


def serve(
    app: FastAPI | str,
    *,
    host: str,
    port: int,
    http_settings: HttpServiceSettings | None = None,
    graceful_shutdown_seconds: float = 10,
    server_class: type[DrainingServer] = DrainingServer,
) -> None:
    """Every service's `run()`. Kubernetes runs the preStop pause, sends SIGTERM and
    waits terminationGracePeriodSeconds: the APIs drain for DRAIN_SECONDS
    (`flokraft_core.web.drain`), then in-flight requests finish well inside the grace
    period (`graceful_shutdown_seconds`). `server_class` lets a service act on the signal
    itself. `http_settings` (the APIs') set the header limit, the trusted proxies and the
    drain."""
    proxies = trusted_proxies(http_settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # h11, not httptools: h11 bounds the request line plus headers, so a megabyte
        # header (a "token" of 32 MB) is refused while it is read, before any of our code.
        http="h11",
        h11_max_incomplete_event_size=(
            http_settings.max_header_bytes if http_settings else _DEFAULT_MAX_HEADER_BYTES
        ),
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so any sidecar could
        # pick the client IP the rate limits key on. Only the configured proxies are
        # trusted; with none, the connecting peer is the client.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        timeout_graceful_shutdown=int(graceful_shutdown_seconds),
        server_header=False,
    )
    drain = app.state.drain if isinstance(app, FastAPI) else Drain()
    drain_seconds = http_settings.drain_seconds if http_settings else 0.0
    server_class(config, drain=drain, drain_seconds=drain_seconds).run()


def serve_api(app: FastAPI, settings: HttpServiceSettings) -> None:
    """The two APIs' `run()`: their bind address, header limit and trusted proxies all
    come from their settings."""
    serve(app, host=settings.host, port=settings.port, http_settings=settings)
