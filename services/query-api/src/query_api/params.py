"""query-api's own parameters: their patterns and the page token (the analysis id is
core's: flokraft_core.web.params)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Query

# Firebase uids are 28 alphanumerics; allow the few separators other issuers use.
USER_ID_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,128}$"
# Our tokens are base64url, well under this length.
PAGE_TOKEN_MAX_LENGTH: Final = 512
# What every token this API issues looks like (flokraft_core.store.page_tokens: payload and
# signature, base64url, joined by a dot). Documented, not enforced by FastAPI: any other
# value is a token this API did not issue, answered with the same 400 as a forged one.
NEXT_PAGE_PATTERN: Final = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
NEXT_PAGE_DESCRIPTION: Final = (
    "Opaque: the `X-Next-Page-Token` (or the `Link` rel=next) of the previous page of the "
    "same list, asked by the same caller with the same filters. It is signed by the "
    "server, so a value it did not issue for this list (forged, edited, another list's) "
    "answers 400 `invalid_argument` even when it matches the pattern."
)

# `page_token` of both list routes.
PageToken = Annotated[
    str | None,
    Query(
        max_length=PAGE_TOKEN_MAX_LENGTH,
        description=NEXT_PAGE_DESCRIPTION,
        json_schema_extra={"pattern": NEXT_PAGE_PATTERN},
    ),
]
