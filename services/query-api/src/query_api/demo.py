"""The live demo page of the event stream: local profile only (`EVENTS_DEMO_PAGE`, off by
default, on in `make dev`; never routed by the chart).

`GET /demo/events` signs in with a dev token, lists `GET /analyses` and refetches it when
`GET /analyses/events` says the list changed (`events-client.js` is the fetch-based SSE
client the docs show). `POST /demo/token` mints that dev token with the local dev-auth
signing key, the one the devstack's issuer publishes, so it verifies exactly as any token
does; a deployment has no such key and never turns this on.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

# The one place query-api touches the local issuer.
from flokraft_core import devauth
from flokraft_core.web.errors import ApiError
from query_api.params import USER_ID_PATTERN
from query_api.settings import QueryApiSettings

_PAGE_DIR = resources.files("query_api") / "demo_page"
_TOKEN_TTL_SECONDS = 3600


def demo_router(settings: QueryApiSettings) -> APIRouter:
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

    @router.post("/token")
    async def demo_token(
        request: Request,
        uid: Annotated[str, Body(embed=True, pattern=USER_ID_PATTERN)],
    ) -> Response:
        key_file = devauth.key_file()
        if not key_file.exists():
            raise ApiError(
                503, "unavailable", "no dev-auth signing key here: start `make dev` first"
            )
        token = devauth.mint_token(
            devauth.load_or_create_key(key_file),
            uid,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
            ttl_seconds=_TOKEN_TTL_SECONDS,
        )
        return JSONResponse({"token": token, "expires_in": _TOKEN_TTL_SECONDS}, headers=no_store)

    return router
