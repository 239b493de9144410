"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.drain import Drain, DrainingServer
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
    server_class: type[DrainingServer] = DrainingServer,
) -> None:
    """Every service's `run()`. Kubernetes runs the preStop pause, sends SIGTERM and
    waits terminationGracePeriodSeconds: the APIs drain for DRAIN_SECONDS
    (`flokraft_core.web.drain`), then in-flight requests finish well inside the grace
    period (`graceful_shutdown_seconds`). `server_class` lets a service act on the signal
    itself. `http_settings` (the APIs') set the header bounds and the drain."""
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
    drain = app.state.drain if isinstance(app, FastAPI) else Drain()
    drain_seconds = http_settings.drain_seconds if http_settings else 0.0
    server_class(config, drain=drain, drain_seconds=drain_seconds).run()


def serve_api(app: FastAPI, settings: HttpServiceSettings) -> None:
    """The two APIs' `run()`: their bind address and header bounds come from their
    settings (the trusted proxies are the app's, see create_service_app)."""
    serve(app, host=settings.host, port=settings.port, http_settings=settings)
