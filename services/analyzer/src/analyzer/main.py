"""analyzer: the worker service. Runs the Pub/Sub worker plus a small HTTP app for
/healthz (the pull loop's heartbeat), /readyz (the worker runs and is not stopping; Firestore
and the subscription are checked in the background, for metrics and logs) and /metrics.

uvicorn owns the main thread and its signal handlers: on SIGTERM it stops serving and
runs the lifespan's exit, which is the worker's graceful shutdown (stop pulling, let the
running job finish within SHUTDOWN_GRACE_SECONDS, otherwise nack it).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from types import FrameType

from fastapi import FastAPI

from analyzer.memory_budget import memory_budget
from analyzer.settings import AnalyzerSettings, get_settings
from analyzer.worker import Worker
from flokraft_core.logs import get_logger
from flokraft_core.readiness import check_firestore_sync
from flokraft_core.web.app import create_service_app
from flokraft_core.web.drain import DrainingServer
from flokraft_core.web.server import serve

log = get_logger(__name__)


def _worker(app: FastAPI) -> Worker:
    worker: Worker = app.state.worker
    return worker


def create_app(settings: AnalyzerSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(settings)
        app.state.worker = worker
        worker.start()
        try:
            yield
        finally:
            await asyncio.to_thread(worker.shutdown)

    async def firestore_up(app: FastAPI) -> None:
        worker = _worker(app)
        await asyncio.to_thread(check_firestore_sync, worker.db, settings)

    async def subscription_up(app: FastAPI) -> None:
        await asyncio.to_thread(_worker(app).subscription_exists)

    def worker_ready(app: FastAPI) -> str | None:
        worker: Worker | None = getattr(app.state, "worker", None)
        if worker is None:
            return "the worker has not started"
        if worker.stopping():
            return "the worker is stopping"
        # No load balancer routes here; readiness says whether this pod does its work.
        return worker.liveness()

    def alive(app: FastAPI) -> str | None:
        worker: Worker | None = getattr(app.state, "worker", None)
        return "the worker has not started" if worker is None else worker.liveness()

    return create_service_app(
        settings,
        title="flokraft analyzer",
        version=version("flokraft-analyzer"),
        description="Worker that runs dance-video analyses; this app only serves health "
        "and metrics.",
        lifespan=lifespan,
        readiness={"worker": worker_ready},
        dependencies={"firestore": firestore_up, "subscription": subscription_up},
        liveness=alive,
    )


class _Server(DrainingServer):
    """uvicorn drains HTTP connections before it runs the lifespan exit; the worker stops
    pulling at the signal itself, so no new job starts during that drain."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        worker: Worker | None = getattr(app.state, "worker", None)
        if worker is not None:
            worker.stop_pulling()
        super().handle_exit(sig, frame)


app = create_app()


def run() -> None:
    settings = get_settings()
    budget = memory_budget(settings)
    if not budget.fits:
        # One line with both numbers and where the limit came from, then a non-zero exit:
        # the pod crash-loops visibly instead of being OOM-killed mid-job later.
        log.error(
            "job_memory_does_not_fit",
            needed_mb=budget.needed_mb,
            limit_mb=budget.limit_mb,
            limit_source=budget.source,
            max_concurrent_jobs=settings.max_concurrent_jobs,
            job_memory_limit_mb=settings.job_memory_limit_mb,
            job_memory_backstop_mb=settings.job_memory_backstop_mb,
            worker_memory_headroom_mb=settings.worker_memory_headroom_mb,
        )
        sys.exit(2)
    # The worker's own grace (SHUTDOWN_GRACE_SECONDS) follows the HTTP drain.
    serve(
        app,
        host=settings.host,
        port=settings.port,
        graceful_shutdown_seconds=5,
        server_class=_Server,
    )


if __name__ == "__main__":
    run()
