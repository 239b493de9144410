"""The live demo page of the event stream: local profile only (`EVENTS_DEMO_PAGE`, off by
default, on in `make dev`; never routed by the chart).

`GET /demo/events` signs in with a dev token pasted from `make token`, lists
`GET /analyses` and refetches it when `GET /analyses/events` says the list changed
(`events-client.js` is the fetch-based SSE client the docs show). It serves two static
files and nothing else: no token is minted here, so query-api never touches the dev
issuer's key (flokraft_core.dev stays out of every production path).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

_PAGE_DIR = resources.files("query_api") / "demo_page"


def demo_router() -> APIRouter:
    router = APIRouter(prefix="/demo", include_in_schema=False)
    page = (_PAGE_DIR / "events.html").read_bytes()
    script = (_PAGE_DIR / "events-client.js").read_bytes()
    no_store = {"Cache-Control": "no-store"}

    @router.get("/events")
    async def demo_page() -> Response:
        return HTMLResponse(page, headers=no_store)

    @router.get("/events-client.js")
    async def demo_script() -> Response:
        return Response(script, media_type="text/javascript", headers=no_store)

    return router
