"""ETags of query-api's answers and the If-None-Match check (RFC 9110).

Two kinds:
- `strong_etag`: a hash of the exact body. Needs the body, so a 304 costs the full read;
  used for the detail, the admin list, and users who have no change marker yet.
- `marker_etag`: a weak tag made from the caller's change-marker version and the request's
  scope (user, filters, limit, page token, response format). Checking it needs only the
  marker, so an unchanged poll is answered without the list query. The tag carries the
  time it was issued, and a tag older than the configured age is not honoured: a write that
  bypassed the services (and so did not bump the marker) shows within that age.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

# Bump when the list's JSON changes shape: every tag issued before then stops matching.
LIST_FORMAT_VERSION: Final = "1"
# A client clock is not involved (the server issues and checks), but replicas' clocks
# differ a little: a tag "issued" slightly in the future is still honoured.
_CLOCK_SKEW_SECONDS: Final = 60


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _candidates(if_none_match: str | None) -> list[str]:
    return [tag.strip() for tag in (if_none_match or "").split(",") if tag.strip()]


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when the client already holds `etag` (so the answer is 304).

    If-None-Match uses the weak comparison: `W/"x"` matches `"x"`; `*` matches anything.
    """
    wanted = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == wanted for tag in _candidates(if_none_match))


# What `marker_etag` makes. Bounded before any number is parsed: a version is at most 19
# ASCII digits (an int64 counter), the issue time at most 16 hex digits; anything else (a
# 5,000-digit "version", Unicode digits) is simply a tag that does not match.
_MARKER_TAG: Final = re.compile(r"m([0-9]{1,19})\.([0-9a-f]{1,16})\.[0-9a-f]{1,64}", re.ASCII)


def marker_etag(version: int, issued_at: int, scope: str) -> str:
    digest = hashlib.blake2b(
        f"{LIST_FORMAT_VERSION}\n{scope}\n{version}\n{issued_at}".encode(), digest_size=12
    ).hexdigest()
    return f'W/"m{version}.{issued_at:x}.{digest}"'


def held_marker_etag(
    if_none_match: str | None, *, version: int, scope: str, now: int, max_age_seconds: float
) -> str | None:
    """The client's tag when it was made from `version` for `scope` no longer than
    `max_age_seconds` ago, else None. The 304 must echo this tag unchanged: answering with
    a freshly issued one would let a polling client's tag never age."""
    for candidate in _candidates(if_none_match):
        parsed = _MARKER_TAG.fullmatch(candidate.removeprefix("W/").strip('"'))
        if parsed is None:
            continue
        version_text, issued_text = parsed.groups()
        issued_at = int(issued_text, 16)
        if int(version_text) != version:
            continue
        if not now - max_age_seconds <= issued_at <= now + _CLOCK_SKEW_SECONDS:
            continue
        tag = marker_etag(version, issued_at, scope)
        if candidate.removeprefix("W/") == tag.removeprefix("W/"):
            return tag
    return None
