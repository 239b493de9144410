"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flokraft_core.settings import HttpServiceSettings


def trusted_proxies(settings: HttpServiceSettings) -> list[str]:
    return [item.strip() for item in settings.forwarded_allow_ips.split(",") if item.strip()]


def serve(app: FastAPI | str, settings: HttpServiceSettings, *, host: str, port: int) -> None:
    proxies = trusted_proxies(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # h11, not httptools: h11 bounds the request line plus headers, so a megabyte
        # header (a "token" of 32 MB) is refused while it is read, before any of our code.
        http="h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so any sidecar could
        # pick the client IP the rate limits key on. Only the configured proxies are
        # trusted; with none, the connecting peer is the client.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        # Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds; finish in-flight
        # requests well inside that.
        timeout_graceful_shutdown=10,
        server_header=False,
    )
