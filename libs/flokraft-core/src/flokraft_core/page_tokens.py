"""Opaque cursor tokens for list pagination.

A token is the position of the last row of a page (its timestamp at full nanosecond
precision, and its document id as tie-breaker), plus a checksum so that a forged or
truncated token is told apart from a valid one. It carries no authority: the query's
user filter is always applied server-side, so a token cannot widen what a caller sees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from google.api_core.datetime_helpers import DatetimeWithNanoseconds

_VERSION = 1
# Firestore document ids may be up to 1,500 bytes; the token stays a bounded input.
_MAX_TOKEN_LENGTH = 4096


class InvalidPageToken(ValueError):
    """The token was not made by us (forged, truncated or from another version)."""


@dataclass(frozen=True)
class PageCursor:
    timestamp: datetime
    doc_id: str


def _checksum(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:12]


def _rfc3339(value: datetime) -> str:
    if isinstance(value, DatetimeWithNanoseconds):
        return str(value.rfc3339())  # type: ignore[no-untyped-call]
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_page_token(cursor: PageCursor) -> str:
    payload = json.dumps(
        {"v": _VERSION, "ts": _rfc3339(cursor.timestamp), "id": cursor.doc_id},
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    raw = payload + b"." + _checksum(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> PageCursor:
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidPageToken("page_token is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload, _, checksum = raw.rpartition(b".")
        if not payload or checksum.decode() != _checksum(payload):
            raise InvalidPageToken("page_token is not one this API issued")
        body = json.loads(payload)
        if body.get("v") != _VERSION:
            raise InvalidPageToken("page_token is from an unsupported version")
        doc_id = body["id"]
        if not isinstance(doc_id, str) or not doc_id or "/" in doc_id:
            raise InvalidPageToken("page_token names no valid document")
        timestamp = DatetimeWithNanoseconds.from_rfc3339(body["ts"])  # type: ignore[no-untyped-call]
    except InvalidPageToken:
        raise
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidPageToken("page_token is malformed") from exc
    return PageCursor(timestamp=timestamp, doc_id=doc_id)
