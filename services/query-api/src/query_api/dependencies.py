"""FastAPI dependencies of query-api: everything a route takes that the lifespan built
once (the read repository, the list versions, the event hub, the page-token key), the
settings, and the page size.

Routes never read app.state themselves (flokraft_core.web.state): each object is named
once here and routes take it as a typed parameter.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.exceptions import RequestValidationError

from flokraft_core.web.state import from_app_state
from query_api.event_streams import EventHub
from query_api.list_versions import ListVersions
from query_api.reads import AnalysisReads
from query_api.settings import QueryApiSettings

Reads = Annotated[AnalysisReads, Depends(from_app_state("reads", AnalysisReads))]
Versions = Annotated[ListVersions, Depends(from_app_state("versions", ListVersions))]
Settings = Annotated[QueryApiSettings, Depends(from_app_state("settings", QueryApiSettings))]
Hub = Annotated[EventHub, Depends(from_app_state("event_hub", EventHub))]
# The secret page tokens are signed with (query_api.settings.page_token_key).
PageTokenKey = Annotated[bytes, Depends(from_app_state("page_token_key", bytes))]

LIMIT = "limit"


async def page_size(
    settings: Settings,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> int:
    """The `limit` query parameter, bounded by LIST_MAX_LIMIT.

    The bound is configuration, so it cannot sit in the module-level route's signature;
    it is checked here with the same 422 a signature bound gives, and `document_page_size`
    puts it in the OpenAPI document."""
    if limit is None:
        return settings.list_default_limit
    if limit > settings.list_max_limit:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", LIMIT),
                    "msg": f"Input should be less than or equal to {settings.list_max_limit}",
                    "input": limit,
                    "ctx": {"le": settings.list_max_limit},
                }
            ]
        )
    return limit


PageSize = Annotated[int, Depends(page_size)]


def document_page_size(app: FastAPI, settings: QueryApiSettings) -> None:
    """Shows this app's page-size default and maximum on every `limit` parameter of its
    OpenAPI document, as a bound in the signature would (clients and fuzzers see them)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        if parameter["name"] == LIMIT and parameter["in"] == "query":
                            parameter["schema"] = {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": settings.list_max_limit,
                                "default": settings.list_default_limit,
                                "title": "Limit",
                            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
