"""Runs an HTTP service under uvicorn with our logging (no uvicorn log config of its own)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from flokraft_core.settings import CoreSettings


def serve(app: FastAPI | str, settings: CoreSettings, *, host: str, port: int) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds; finish in-flight
        # requests well inside that.
        timeout_graceful_shutdown=10,
        server_header=False,
    )
