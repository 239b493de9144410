"""The one page query behind `GET /analyses` and `GET /admin/analyses`: decode the cursor,
read one bounded page, serialize it, and answer with ETag, Link and next-page headers.

The user list (`user_page_response`) is tagged from the caller's change marker, so an
unchanged poll is answered 304 after reading the marker alone. Order matters: the marker
is read BEFORE the page. A write that lands between the two reads has bumped the marker
past the version the page is tagged with, so the next poll gets a 200 with it. Read the
other way round, a page read just before a write could be tagged with the version after
it, and every later poll would get a 304 for a page that lacks the write.
"""

from __future__ import annotations

import json
import time

from fastapi import Request, Response
from prometheus_client import Counter
from pydantic import TypeAdapter

from flokraft_core.logs import get_logger
from flokraft_core.store.document import AnalysisListItem
from flokraft_core.store.page_tokens import (
    InvalidPageToken,
    PageCursor,
    decode_page_token,
    encode_page_token,
    list_binding,
)
from flokraft_core.web.errors import ApiError
from query_api.etag import held_marker_etag, marker_etag, none_match, strong_etag
from query_api.list_versions import ListVersions
from query_api.reads import AnalysisReads, InvalidCursor, ListFilters
from query_api.responses import cache_headers
from query_api.settings import QueryApiSettings

log = get_logger(__name__)

_ITEMS = TypeAdapter(list[AnalysisListItem])

FULL_PAGES = Counter(
    "query_api_full_pages_total",
    "List pages that came back full at the maximum page size (a client paging through "
    "everything, or a limit that is too small).",
    ["route"],
)
LIST_ANSWERS = Counter(
    "query_api_list_answers_total",
    "User list answers by how they were decided: not_modified (marker matched, no list "
    "query), page (marker-tagged page), unmarked (user without a marker: body-hash tag).",
    ["outcome"],
)


def _invalid_token(message: str) -> ApiError:
    return ApiError(400, "invalid_argument", f"page_token: {message}", param="page_token")


def conditional_json(request: Request, body: bytes, headers: dict[str, str]) -> Response:
    """200 with the body, or 304 without it when the client's If-None-Match is current."""
    if none_match(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _binding(request: Request, filters: ListFilters) -> bytes:
    """What a token is bound to: who asks and which list, so a token is only good for the
    list it came from."""
    return list_binding(
        getattr(request.state, "uid", ""),
        filters.user_id,
        filters.analysis_type,
        filters.status,
        str(request.url.path),
    )


def _decode_cursor(
    request: Request, secret: bytes, filters: ListFilters, page_token: str | None
) -> PageCursor | None:
    if page_token is None:
        return None
    try:
        return decode_page_token(page_token, secret=secret, binding=_binding(request, filters))
    except InvalidPageToken as exc:
        raise _invalid_token(str(exc)) from exc


async def _read_page(
    request: Request,
    reads: AnalysisReads,
    settings: QueryApiSettings,
    secret: bytes,
    filters: ListFilters,
    *,
    cursor: PageCursor | None,
    limit: int,
) -> tuple[bytes, dict[str, str]]:
    """The page's JSON and its paging headers (Link, X-Next-Page-Token)."""
    try:
        page = await reads.list_page(filters, cursor=cursor, limit=limit)
    except InvalidCursor as exc:
        raise _invalid_token("page_token names no valid position") from exc

    if len(page.items) >= settings.list_max_limit:
        FULL_PAGES.labels(route=request.url.path).inc()
        log.warning(
            "list_page_full_at_max",
            limit=limit,
            user_id=filters.user_id,
            analysis_type=filters.analysis_type,
            status=filters.status,
            more=page.next_cursor is not None,
        )

    headers: dict[str, str] = {}
    if page.next_cursor is not None:
        token = encode_page_token(
            page.next_cursor, secret=secret, binding=_binding(request, filters)
        )
        next_url = request.url.include_query_params(page_token=token)
        # A relative reference (RFC 8288 allows it): behind the ingress the scheme and host
        # this process sees are not the ones the browser used.
        headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
        headers["X-Next-Page-Token"] = token
    return _ITEMS.dump_json(page.items), headers


async def page_response(
    request: Request,
    reads: AnalysisReads,
    settings: QueryApiSettings,
    secret: bytes,
    filters: ListFilters,
    *,
    limit: int,
    page_token: str | None,
) -> Response:
    """A page tagged by its own body (strong ETag): the admin list, and users without a
    change marker. A 304 here still costs the page read."""
    cursor = _decode_cursor(request, secret, filters, page_token)
    body, paging = await _read_page(
        request, reads, settings, secret, filters, cursor=cursor, limit=limit
    )
    return conditional_json(request, body, cache_headers(strong_etag(body)) | paging)


def _scope(filters: ListFilters, limit: int, page_token: str | None) -> str:
    """Everything besides the marker version that the page depends on."""
    return json.dumps(
        [filters.user_id, filters.analysis_type, filters.status, limit, page_token],
        separators=(",", ":"),
    )


async def user_page_response(
    request: Request,
    reads: AnalysisReads,
    versions: ListVersions,
    settings: QueryApiSettings,
    secret: bytes,
    filters: ListFilters,
    *,
    limit: int,
    page_token: str | None,
) -> Response:
    """One user's page, tagged from their change marker (see the module docstring)."""
    assert filters.user_id is not None
    cursor = _decode_cursor(request, secret, filters, page_token)  # a bad token costs no read
    version = await versions.current(filters.user_id)
    if version is None:
        LIST_ANSWERS.labels("unmarked").inc()
        return await page_response(
            request, reads, settings, secret, filters, limit=limit, page_token=page_token
        )
    scope = _scope(filters, limit, page_token)
    now = int(time.time())
    held = held_marker_etag(
        request.headers.get("if-none-match"),
        version=version,
        scope=scope,
        now=now,
        max_age_seconds=settings.list_etag_max_age_seconds,
    )
    if held is not None:
        LIST_ANSWERS.labels("not_modified").inc()
        return Response(status_code=304, headers=cache_headers(held))
    body, paging = await _read_page(
        request, reads, settings, secret, filters, cursor=cursor, limit=limit
    )
    LIST_ANSWERS.labels("page").inc()
    headers = cache_headers(marker_etag(version, now, scope)) | paging
    return Response(body, media_type="application/json", headers=headers)
