"""query-api: the polling read side (list, detail, admin list)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from flokraft_core.readiness import check_firestore_async
from flokraft_core.store.client import async_client, sync_client
from flokraft_core.web.app import create_service_app
from flokraft_core.web.server import serve_api
from query_api import demo
from query_api.change_feed import ChangeFeed
from query_api.dependencies import document_page_size
from query_api.event_streams import EventHub, marker_version
from query_api.list_versions import ListVersions
from query_api.reads import AnalysisReads
from query_api.routers import admin, analyses, events
from query_api.settings import QueryApiSettings, get_settings, page_token_key
from query_api.stream_admission import StreamAdmission


def create_app(settings: QueryApiSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.page_token_key = page_token_key(settings)  # refuses to start without
        # Built once; routes get it through query_api.dependencies.
        app.state.db = async_client(settings)
        app.state.reads = AnalysisReads(
            app.state.db,
            settings.firestore_collection,
            markers_collection=settings.firestore_feed_collection,
            timeout_seconds=settings.firestore_timeout_seconds,
            retry_seconds=settings.firestore_retry_seconds,
        )
        feed = None
        if settings.list_etag_from_feed or settings.events_enabled:
            # Listeners exist only on the sync client; it runs them on its own threads.
            feed_db = sync_client(settings)
            feed = ChangeFeed(
                feed_db,
                settings.firestore_feed_collection,
                max_users=settings.change_feed_max_users,
                verify_seconds=settings.change_feed_verify_seconds,
                listener_max_markers=settings.change_feed_listener_max_markers,
            )
        app.state.event_hub = None
        if feed is not None and settings.events_enabled:
            reads = app.state.reads
            drain = app.state.drain
            hub = EventHub(
                settings.events_max_streams,
                lambda user_id: marker_version(reads, user_id),
                max_per_user=settings.events_max_streams_per_user,
                max_per_address=settings.events_max_streams_per_address,
                draining=lambda: bool(drain.draining),
            )
            feed.add_observer(hub.changed)
            feed.add_recovery_observer(hub.recovered)
            hub.start()
            app.state.event_hub = hub
        if feed is not None:
            await feed.start()
        app.state.feed = feed
        app.state.versions = ListVersions(
            app.state.reads, feed, trust_feed=settings.list_etag_from_feed
        )
        try:
            yield
        finally:
            if app.state.event_hub is not None:
                await app.state.event_hub.stop()
            if feed is not None:
                await feed.stop()
                feed_db.close()  # type: ignore[no-untyped-call]
            app.state.db.close()

    async def firestore_up(app: FastAPI) -> None:
        await check_firestore_async(app.state.db, settings)

    app = create_service_app(
        settings,
        title="flokraft query-api",
        version=version("flokraft-query-api"),
        description="Lists and shows dance analyses; polled by the frontend.",
        # The stream's route first: `/analyses/{analysis_id}` would match "events".
        routers=[
            *([events.router] if settings.events_enabled else []),
            analyses.router,
            admin.router,
            *([demo.router] if settings.events_demo_page else []),
        ],
        # A stream's duration is its lifetime, not a latency: it has its own metrics.
        uninstrumented_paths=[events.EVENTS_PATH],
        lifespan=lifespan,
        # Not in readiness: every replica shares it (flokraft_core.readiness).
        dependencies={"firestore": firestore_up},
    )
    document_page_size(app, settings)
    if settings.events_enabled:
        # Outermost: a stream waiting for its turn holds nothing of the app yet.
        app.add_middleware(
            StreamAdmission,
            path=events.EVENTS_PATH,
            concurrency=settings.events_admission_concurrency,
            max_waiting=settings.events_max_streams,
            retry_after_seconds=settings.events_full_retry_after_seconds,
        )
    return app


app = create_app()


def run() -> None:
    serve_api(app, get_settings())


if __name__ == "__main__":
    run()
