"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.http_protocol import bounded_h11_protocol

# Without an API's settings (the analyzer's health server): the APIs' defaults.
_DEFAULT_MAX_HEADER_BYTES = 16384
_DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


def serve(
    app: FastAPI | str,
    *,
    host: str,
    port: int,
    http_settings: HttpServiceSettings | None = None,
    graceful_shutdown_seconds: float = 10,
    server_class: type[uvicorn.Server] = uvicorn.Server,
) -> None:
    """Every service's `run()`. Kubernetes sends SIGTERM and waits
    terminationGracePeriodSeconds; in-flight requests finish well inside that
    (`graceful_shutdown_seconds`). `server_class` lets a service act on the signal itself.
    `http_settings` (the APIs') set the header bounds."""
    max_header_bytes = (
        http_settings.max_header_bytes if http_settings else _DEFAULT_MAX_HEADER_BYTES
    )
    header_timeout = (
        http_settings.header_timeout_seconds if http_settings else _DEFAULT_HEADER_TIMEOUT_SECONDS
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # h11, not httptools: h11 bounds an incomplete request head, so a megabyte header
        # (a "token" of 32 MB) is refused while it is read, before any of our code; our
        # subclass bounds a complete head as well and times out a head that dawdles.
        http=bounded_h11_protocol(max_header_bytes, header_timeout),
        h11_max_incomplete_event_size=max_header_bytes,
        # Never uvicorn's proxy handling: it believes X-Forwarded-For from 127.0.0.1 by
        # default and takes the last untrusted entry, which behind Google's load balancer
        # is the load balancer itself. The app resolves the client (web/forwarded.py).
        proxy_headers=False,
        timeout_graceful_shutdown=int(graceful_shutdown_seconds),
        server_header=False,
    )
    server_class(config).run()


def serve_api(app: FastAPI, settings: HttpServiceSettings) -> None:
    """The two APIs' `run()`: their bind address and header bounds come from their
    settings (the trusted proxies are the app's, see create_service_app)."""
    serve(app, host=settings.host, port=settings.port, http_settings=settings)
