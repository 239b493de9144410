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


_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(prefix="/demo", include_in_schema=False)


@router.get("/events")
async def demo_page() -> Response:
    return HTMLResponse((_PAGE_DIR / "events.html").read_bytes(), headers=_NO_STORE)


@router.get("/events-client.js")
async def demo_script() -> Response:
    script = (_PAGE_DIR / "events-client.js").read_bytes()
    return Response(script, media_type="text/javascript", headers=_NO_STORE)
