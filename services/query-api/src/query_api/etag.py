"""Strong ETags from the exact response bytes, and the If-None-Match check (RFC 9110).

The tag is a hash of the body, so nothing has to be remembered between polls: a poller
whose page did not change gets 304 without a body, and no server state grows with it.
"""

from __future__ import annotations

import hashlib


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when the client already holds `etag` (so the answer is 304).

    If-None-Match uses the weak comparison: `W/"x"` matches `"x"`; `*` matches anything.
    """
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False
