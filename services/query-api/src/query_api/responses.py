"""The non-200 answers every route declares (the error ones are core's, shared with
rerun-api), so that the OpenAPI document is complete enough for clients and for
schemathesis to check against."""

from __future__ import annotations

from typing import Any

from flokraft_core.web.errors import STANDARD_ERRORS, error_responses
from query_api.params import NEXT_PAGE_PATTERN

CACHE_CONTROL = "private, no-cache"
# Two callers never share a list: the answer depends on who the token says they are.
VARY = "Authorization"


CACHE_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Tag for If-None-Match: weak and made from the caller's change marker "
        "on the user list, strong (a hash of the body) elsewhere.",
        "schema": {"type": "string"},
        "required": True,
    },
    "Cache-Control": {
        "description": CACHE_CONTROL,
        "schema": {"type": "string"},
        "required": True,
    },
    "Vary": {"description": VARY, "schema": {"type": "string"}, "required": True},
}

NOT_MODIFIED: dict[str, Any] = {
    "description": "The If-None-Match tag is current; no body.",
    "content": {},
    "headers": CACHE_HEADERS,
}

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {304: NOT_MODIFIED, **STANDARD_ERRORS}

PAGE_HEADERS: dict[str, Any] = {
    **CACHE_HEADERS,
    "Link": {
        "description": 'RFC 8288 `<...>; rel="next"` when more rows follow.',
        "schema": {"type": "string"},
    },
    "X-Next-Page-Token": {
        "description": "Cursor of the next page, when there is one: its `page_token`.",
        "schema": {"type": "string", "pattern": NEXT_PAGE_PATTERN},
    },
}


def next_page_link(operation_id: str) -> dict[str, Any]:
    """An OpenAPI link from a page to the next one: `page_token` is the page's
    X-Next-Page-Token, so a client or a stateful fuzzer pages with a token the API issued."""
    return {
        "next": {
            "operationId": operation_id,
            "parameters": {"page_token": "$response.header.X-Next-Page-Token"},
            "description": "The next page of the same list (same filters and limit).",
        }
    }


def page_responses(operation_id: str, forbidden: str) -> dict[int | str, dict[str, Any]]:
    """The answers of a list route (`forbidden`: when it answers 403)."""
    return {
        **COMMON_RESPONSES,
        200: {
            "description": "One page of list rows.",
            "headers": PAGE_HEADERS,
            "links": next_page_link(operation_id),
        },
        **error_responses(
            {400: "page_token is not one this API issued for this list.", 403: forbidden}
        ),
    }


def cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}
