"""The non-200 answers every route declares (the error ones are core's, shared with
rerun-api), so that the OpenAPI document is complete enough for clients and for
schemathesis to check against."""

from __future__ import annotations

from typing import Any

from flokraft_core.web.errors import STANDARD_ERRORS

CACHE_CONTROL = "private, no-cache"
# Two callers never share a list: the answer depends on who the token says they are.
VARY = "Authorization"


NOT_MODIFIED: dict[str, Any] = {
    "description": "The If-None-Match tag is current; no body.",
    "content": {},
}

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {304: NOT_MODIFIED, **STANDARD_ERRORS}

CACHE_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Tag for If-None-Match: weak and made from the caller's change marker "
        "on the user list, strong (a hash of the body) elsewhere.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": CACHE_CONTROL, "schema": {"type": "string"}},
}

PAGE_HEADERS: dict[str, Any] = {
    **CACHE_HEADERS,
    "Link": {
        "description": 'RFC 8288 `<...>; rel="next"` when more rows follow.',
        "schema": {"type": "string"},
    },
    "X-Next-Page-Token": {
        "description": "Cursor of the next page, when there is one.",
        "schema": {"type": "string"},
    },
}


def cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}
