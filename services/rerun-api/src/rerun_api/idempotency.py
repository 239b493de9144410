"""Idempotency-Key: the first answer to a key is stored in Firestore and replayed for 24 h.

The record lives in Firestore, not in process memory, because every replica must see it.
Its id is a hash of (user, method, path, key), so one user's key never collides with
another's and the raw key never lands in an index. `expires_at` is meant for a Firestore
TTL policy; until that deletes a record, an expired one is simply taken over.

Only successful answers are stored. Every error this service returns happens before
anything was written (or leaves nothing a retry could duplicate), so on an error the key
is released and a retry with the same key runs again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from google.api_core import exceptions as gexc
from google.cloud import firestore

from flokraft_core.analyses import utc_now
from flokraft_core.auth import Principal
from flokraft_core.logs import get_logger
from flokraft_core.read_costs import count_reads
from flokraft_core.web.errors import ApiError
from rerun_api.settings import RerunApiSettings

log = get_logger(__name__)

HEADER: Final = "Idempotency-Key"
MAX_KEY_LENGTH: Final = 255
# Visible ASCII and inner spaces: what survives every proxy unchanged.
KEY_REGEX: Final = r"^[!-~](?:[ -~]*[!-~])?$"
_KEY_PATTERN: Final = re.compile(KEY_REGEX)

IN_FLIGHT: Final = "in_flight"
COMPLETED: Final = "completed"


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def validate_key(value: str) -> str:
    if not value or len(value) > MAX_KEY_LENGTH or not _KEY_PATTERN.fullmatch(value):
        raise ApiError(
            422,
            "invalid_argument",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            param=HEADER,
        )
    return value


def idempotency_key(
    value: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Makes a retried POST return the first answer instead of acting "
            "twice (kept 24 h; per user).",
            # Documented, not enforced by FastAPI: `validate_key` answers with our own
            # 422 naming the header.
            json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_REGEX},
        ),
    ] = None,
) -> str | None:
    return None if value is None else validate_key(value)


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def record_id(uid: str, method: str, path: str, key: str) -> str:
    material = "\x00".join((uid, method.upper(), path, key)).encode()
    return hashlib.sha256(material).hexdigest()


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _conflict() -> ApiError:
    return ApiError(
        409,
        "request_in_progress",
        f"a request with this {HEADER} is still in progress; retry shortly",
        param=HEADER,
        headers={"Retry-After": "1"},
    )


def _mismatch() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        f"this {HEADER} was used with a different request body",
        param=HEADER,
    )


class IdempotencyClaim:
    """One request's hold on a key: `replay` is set when an earlier answer exists."""

    def __init__(
        self, store: IdempotencyStore, ref: Any, replay: StoredAnswer | None = None
    ) -> None:
        self._store = store
        self._ref = ref
        self.replay = replay

    async def complete(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        await self._ref.update(
            {"state": COMPLETED, "status": status, "body": body, "headers": headers},
            timeout=self._store.timeout,
            retry=None,
        )

    async def release(self) -> None:
        await self._ref.delete(timeout=self._store.timeout, retry=None)


class IdempotencyStore:
    def __init__(self, db: firestore.AsyncClient, settings: RerunApiSettings) -> None:
        self._collection = db.collection(settings.idempotency_collection)
        self._db = db
        self._ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
        self._lock = timedelta(seconds=settings.idempotency_lock_seconds)
        self.timeout = settings.firestore_timeout_seconds

    def _fresh_record(self, request_hash: str) -> dict[str, Any]:
        now = utc_now()
        return {
            "state": IN_FLIGHT,
            "request_hash": request_hash,
            "created_at": now,
            "expires_at": now + self._ttl,
            "lock_until": now + self._lock,
            "status": None,
            "body": None,
            "headers": None,
        }

    async def claim(
        self, *, uid: str, method: str, path: str, key: str, request_hash: str
    ) -> IdempotencyClaim:
        """Takes the key for this request, or returns the stored answer to replay.
        Raises 409 while another request holds the key, 422 for a different body."""
        ref = self._collection.document(record_id(uid, method, path, key))
        # Two rounds: a record released between our create and our read is retried once.
        for _ in range(2):
            try:
                await ref.create(self._fresh_record(request_hash), timeout=self.timeout, retry=None)
                return IdempotencyClaim(self, ref)
            except gexc.AlreadyExists:
                pass
            snapshot = await ref.get(timeout=self.timeout, retry=None)
            count_reads(1)
            data = snapshot.to_dict() if snapshot.exists else None
            if data is None:
                continue
            now = utc_now()
            if _before(data.get("expires_at"), now):
                return await self._take_over(ref, snapshot, request_hash)
            if data.get("request_hash") != request_hash:
                raise _mismatch()
            if data.get("state") == COMPLETED:
                return IdempotencyClaim(self, ref, replay=_stored_answer(data))
            if _before(data.get("lock_until"), now):
                # The holder died mid-request (its replica crashed): nothing it did can be
                # replayed, so this retry runs the request again.
                return await self._take_over(ref, snapshot, request_hash)
            raise _conflict()
        raise _conflict()

    async def _take_over(self, ref: Any, snapshot: Any, request_hash: str) -> IdempotencyClaim:
        try:
            await ref.update(
                self._fresh_record(request_hash),
                option=self._db.write_option(last_update_time=snapshot.update_time),
                timeout=self.timeout,
                retry=None,
            )
        except gexc.FailedPrecondition as exc:  # another retry took it first
            raise _conflict() from exc
        return IdempotencyClaim(self, ref)


def _before(value: Any, now: datetime) -> bool:
    return isinstance(value, datetime) and value < now


def _stored_answer(data: dict[str, Any]) -> StoredAnswer:
    status = data.get("status")
    body = data.get("body")
    headers = data.get("headers")
    return StoredAnswer(
        status=status if isinstance(status, int) else 200,
        body=body if isinstance(body, dict) else {},
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )


# Errors of the record's own writes after the request's work is done or abandoned: the
# request's answer stands, and the record's lock runs out on its own.
_RECORD_WRITE_ERRORS: Final = (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError)


class Idempotent:
    """What the body of `idempotent(...)` sees: a stored answer to replay, or the means to
    store its own answer."""

    def __init__(self, claim: IdempotencyClaim | None) -> None:
        self._claim = claim
        self.replay: JSONResponse | None = None
        if claim is not None and claim.replay is not None:
            answer = claim.replay
            self.replay = JSONResponse(
                answer.body,
                status_code=answer.status,
                headers={**answer.headers, "Idempotent-Replayed": "true"},
            )

    async def answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> JSONResponse:
        """The request's answer, stored for the key (if any) so a retry replays it."""
        if self._claim is not None:
            try:
                await self._claim.complete(status, body, headers)
            except _RECORD_WRITE_ERRORS as exc:
                log.warning("idempotency_store_failed", error=type(exc).__name__)
        return JSONResponse(body, status_code=status, headers=headers)

    async def release(self) -> None:
        if self._claim is None or self._claim.replay is not None:
            return
        try:
            await self._claim.release()
        except _RECORD_WRITE_ERRORS as exc:
            # The record's lock runs out on its own; a retry then takes the key over.
            log.warning("idempotency_release_failed", error=type(exc).__name__)


@asynccontextmanager
async def idempotent(
    store: IdempotencyStore,
    key: str | None,
    principal: Principal,
    request: Request,
    request_hash: str,
) -> AsyncIterator[Idempotent]:
    """Claims `key` for this request (no key: nothing is stored), yields the answer to
    replay if one exists, and releases the key when the body raises: every error this
    service returns leaves nothing a retry could duplicate, so the retry runs again."""
    claim = None
    if key is not None:
        claim = await store.claim(
            uid=principal.uid,
            method=request.method,
            path=request.url.path,
            key=key,
            request_hash=request_hash,
        )
    attempt = Idempotent(claim)
    try:
        yield attempt
    except Exception:
        await attempt.release()
        raise
