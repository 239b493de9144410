"""Opaque cursor tokens for list pagination.

A token is the position of the last row of a page (its timestamp at full nanosecond
precision, and its document id as tie-breaker), signed with HMAC-SHA256 under a secret
only the servers know (PAGE_TOKEN_SECRET) and bound to the list it came from: the caller
and the filters. A token that was forged, truncated, edited, or issued for another user's
or another filter's list does not verify, and is answered 400 before anything in it is
parsed. The signature is checked before the payload is decoded, so no hostile JSON ever
reaches the decoder; the shape is still checked after, as a second line.

The token carries no authority either way: the query's user filter is always applied
server-side, so even a valid token cannot widen what a caller sees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.api_core.datetime_helpers import DatetimeWithNanoseconds

_VERSION = 2
# Firestore document ids may be up to 1,500 bytes; the token stays a bounded input.
_MAX_TOKEN_LENGTH = 4096
# 128 bits of HMAC-SHA256: far beyond guessing, and keeps the token short.
_TAG_BYTES = 16


class InvalidPageToken(ValueError):
    """The token was not made by us for this list (forged, truncated, another list's)."""


@dataclass(frozen=True)
class PageCursor:
    timestamp: datetime
    doc_id: str


def list_binding(caller: str, *filters: str | None) -> bytes:
    """What a token is bound to: who asked, and which list (owner, type, status...)."""
    return json.dumps([caller, *filters], separators=(",", ":")).encode()


def _tag(secret: bytes, binding: bytes, payload: bytes) -> bytes:
    # Length-prefixed, so no (binding, payload) pair can be re-split into another.
    message = len(binding).to_bytes(4, "big") + binding + payload
    return hmac.new(secret, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    # validate=True: characters outside the alphabet are an error, not silently dropped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _rfc3339(value: datetime) -> str:
    if isinstance(value, DatetimeWithNanoseconds):
        return str(value.rfc3339())  # type: ignore[no-untyped-call]
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_page_token(cursor: PageCursor, *, secret: bytes, binding: bytes) -> str:
    payload = json.dumps(
        {"v": _VERSION, "ts": _rfc3339(cursor.timestamp), "id": cursor.doc_id},
        separators=(",", ":"),
        ensure_ascii=True,
        sort_keys=True,
    ).encode()
    return f"{_b64(payload)}.{_b64(_tag(secret, binding, payload))}"


def decode_page_token(token: str, *, secret: bytes, binding: bytes) -> PageCursor:
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidPageToken("page_token is empty or too long")
    encoded_payload, dot, encoded_tag = token.partition(".")
    try:
        payload, tag = _unb64(encoded_payload), _unb64(encoded_tag)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPageToken("page_token is malformed") from exc
    if not dot or not hmac.compare_digest(tag, _tag(secret, binding, payload)):
        raise InvalidPageToken("page_token is not one this API issued for this list")
    return _cursor(payload)


def _cursor(payload: bytes) -> PageCursor:
    try:
        body: Any = json.loads(payload)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise InvalidPageToken("page_token is from an unsupported version")
        doc_id, raw_ts = body.get("id"), body.get("ts")
        if not isinstance(doc_id, str) or not isinstance(raw_ts, str):
            raise InvalidPageToken("page_token names no valid position")
        doc_id.encode()  # a lone surrogate cannot be a document id
        if not doc_id or "/" in doc_id:
            raise InvalidPageToken("page_token names no valid document")
        timestamp = DatetimeWithNanoseconds.from_rfc3339(raw_ts)  # type: ignore[no-untyped-call]
    except InvalidPageToken:
        raise
    except (ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise InvalidPageToken("page_token is malformed") from exc
    return PageCursor(timestamp=timestamp, doc_id=doc_id)
