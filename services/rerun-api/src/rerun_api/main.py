"""rerun-api: the command side (create, rerun, cancel and delete analyses; the outbox
reconciler and the stale-work sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.readiness import check_firestore_async
from flokraft_core.store.client import async_client
from flokraft_core.video_urls import VideoUrlPolicy
from flokraft_core.web.app import create_service_app
from flokraft_core.web.server import serve_api
from rerun_api.commands import AnalysisCommands
from rerun_api.idempotency import IdempotencyStore
from rerun_api.lifecycle import AnalysisLifecycle
from rerun_api.outbox import OutboxReconciler
from rerun_api.routers import analyses
from rerun_api.settings import RerunApiSettings, get_settings
from rerun_api.sweeper import StaleWorkSweeper


def create_app(settings: RerunApiSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built once; routes get them through rerun_api.dependencies.
        app.state.db = async_client(settings)
        app.state.commands = AnalysisCommands(
            app.state.db,
            settings.firestore_collection,
            markers_collection=settings.firestore_feed_collection,
            rpc_timeout=settings.firestore_timeout_seconds,
        )
        app.state.lifecycle = AnalysisLifecycle(
            app.state.db,
            settings.firestore_collection,
            markers_collection=settings.firestore_feed_collection,
            rpc_timeout=settings.firestore_timeout_seconds,
        )
        app.state.publisher = JobPublisher(settings)
        app.state.idempotency = IdempotencyStore(app.state.db, settings)
        app.state.video_url_policy = VideoUrlPolicy.from_settings(settings)
        reconciler = OutboxReconciler(app.state.commands, app.state.publisher, settings)
        outbox_task = asyncio.create_task(reconciler.run_forever(), name="outbox-reconciler")
        sweeper = StaleWorkSweeper(
            app.state.lifecycle, app.state.commands, app.state.publisher, settings
        )
        sweeper_task = asyncio.create_task(sweeper.run_forever(), name="stale-work-sweeper")
        try:
            yield
        finally:
            for task in (outbox_task, sweeper_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            app.state.publisher.close()
            app.state.db.close()

    async def firestore_up(app: FastAPI) -> None:
        await check_firestore_async(app.state.db, settings)

    async def topic_up(app: FastAPI) -> None:
        publisher: JobPublisher = app.state.publisher
        if not await asyncio.to_thread(publisher.topic_exists, settings.readiness_timeout_seconds):
            raise LookupError(f"topic {publisher.topic_path} does not exist")

    return create_service_app(
        settings,
        title="flokraft rerun-api",
        version=version("flokraft-rerun-api"),
        description="Creates, reruns, cancels and deletes dance analyses; the work goes to "
        "the analyzer.",
        routers=[analyses.router],
        lifespan=lifespan,
        # Not in readiness: every replica shares them, and the outbox rides out Pub/Sub
        # outages anyway (flokraft_core.readiness).
        dependencies={"firestore": firestore_up, "pubsub_topic": topic_up},
    )


app = create_app()


def run() -> None:
    serve_api(app, get_settings())


if __name__ == "__main__":
    run()
