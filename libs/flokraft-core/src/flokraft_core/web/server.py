"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def serve(
    app: FastAPI | str,
    *,
    host: str,
    port: int,
    graceful_shutdown_seconds: float = 10,
    server_class: type[uvicorn.Server] = uvicorn.Server,
) -> None:
    """Every service's `run()`. Kubernetes sends SIGTERM and waits
    terminationGracePeriodSeconds; in-flight requests finish well inside that
    (`graceful_shutdown_seconds`). `server_class` lets a service act on the signal itself."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(graceful_shutdown_seconds),
        server_header=False,
    )
    server_class(config).run()
