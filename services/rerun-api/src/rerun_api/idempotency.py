"""Idempotency-Key on POST /analyses and POST /analyses/{id}/rerun: a retry with the same
key never acts twice, whatever failed or timed out, and gets the first answer.

That holds by construction, not by bookkeeping around the write:

- The key's record (the stored answer) is read and written inside the command's own
  Firestore transaction (a `Receipt` of rerun_api.commands), so it lands
  exactly when the analysis write does. A commit that timed out but landed left the
  record: the retry replays it. One that did not land left neither: the retry runs again.
  Nothing is ever released on an error, so no error can let a second request through.
- A create with a key writes the analysis under an id derived from (user, key)
  (`analysis_id_for`) with a must-not-exist precondition: even with the record gone (its
  TTL ran out) the key can never make a second document, and the retry is answered from
  that document (rerun_api.routers.analyses).
- A rerun is guarded by its generation: the first one's commit leaves the analysis queued,
  so a retry without a key answers 409, and one with the key replays the 202.
- Two requests with the same key at once are serialised by the transaction on the record:
  the later one finds the earlier one's record and replays it.

So a 503 on these routes means the outcome is unknown (the write may have landed), and
retrying with the same Idempotency-Key is always safe.

The record is `idempotency_keys/{sha256(user, method, path, key)}` (one user's key never
collides with another's, and the raw key never lands in an index):
{state, request_hash, created_at, expires_at, status, body, headers}. `expires_at` is for
a Firestore TTL policy (docs/deploy.md); until that deletes a record, an expired one is
overwritten by the next request with its key. Records `in_flight` are written only by
earlier releases of this service, which claimed the key before the work: they still
answer 409 until their `lock_until`.

A delete of the analysis turns every record that describes it (the analysis lists them in
`idempotency_records`) into a tombstone `{state: deleted}` in the delete's transaction: a
retry with such a key answers 410 `analysis_deleted`, never the deleted analysis's data
and never a new analysis under its id. Tombstones carry no `expires_at`, so they stay;
they hold no data of the analysis. Records written before analyses listed them (earlier
releases) are not found by a delete and replay until their TTL.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from fastapi.responses import JSONResponse
from google.api_core import exceptions as gexc
from google.cloud import firestore

from flokraft_core.logs import get_logger
from flokraft_core.store.document import utc_now
from flokraft_core.web.errors import ApiError
from rerun_api.commands import QueuedAnalysis
from rerun_api.settings import RerunApiSettings

log = get_logger(__name__)

HEADER: Final = "Idempotency-Key"
# Set on a stored answer sent again.
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255
# Visible ASCII and inner spaces: what survives every proxy unchanged.
KEY_REGEX: Final = r"^[!-~](?:[ -~]*[!-~])?$"
_KEY_PATTERN: Final = re.compile(KEY_REGEX)

IN_FLIGHT: Final = "in_flight"
COMPLETED: Final = "completed"
# The analysis the stored answer described was deleted: the answer is gone for good.
DELETED: Final = "deleted"
# Prefix of analysis ids derived from an Idempotency-Key (inside ANALYSIS_ID_PATTERN).
DERIVED_ID_PREFIX: Final = "ik-"


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    def response(self) -> JSONResponse:
        """The answer as a replay."""
        return JSONResponse(
            self.body,
            status_code=self.status,
            headers={**self.headers, REPLAYED_HEADER: "true"},
        )


# Builds a request's answer from what its command is about to commit.
AnswerOf = Callable[[QueuedAnalysis], StoredAnswer]


def validate_key(value: str) -> str:
    if not value or len(value) > MAX_KEY_LENGTH or not _KEY_PATTERN.fullmatch(value):
        raise ApiError(
            422,
            "invalid_argument",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            param=HEADER,
        )
    return value


def record_id(uid: str, method: str, path: str, key: str) -> str:
    material = "\x00".join((uid, method.upper(), path, key)).encode()
    return hashlib.sha256(material).hexdigest()


def analysis_id_for(uid: str, key: str) -> str:
    """The id a create with `key` writes: the same for every retry of that user's key, and
    another user's same key gives another id. 160 bits of a hash, so ids never collide."""
    material = "\x00".join(("analysis", uid, key)).encode()
    return DERIVED_ID_PREFIX + hashlib.sha256(material).hexdigest()[:40]


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


def mismatch() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        f"this {HEADER} was used with a different request body",
        param=HEADER,
    )


def _deleted() -> ApiError:
    return ApiError(
        410,
        "analysis_deleted",
        f"the analysis this {HEADER} created or acted on was deleted; this key cannot be "
        "used again (send a new one to start a new analysis)",
        param=HEADER,
    )


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


# What a record holds beside its state; a tombstone drops all of it.
_ANSWER_FIELDS: Final = ("request_hash", "expires_at", "lock_until", "status", "body", "headers")
DELETE: Final = firestore.DELETE_FIELD

# Errors of a best-effort write to a record after the request's work is done.
_RECORD_WRITE_ERRORS: Final = (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError)


class KeyReceipt:
    """One request's Idempotency-Key as a `Receipt` of its command: read and written in the
    command's transaction (rerun_api.commands). After the command returned
    None, `replay` is the stored answer."""

    def __init__(
        self,
        store: IdempotencyStore,
        ref: firestore.AsyncDocumentReference,
        request_hash: str,
        answer_of: AnswerOf,
        derived_id: str,
    ) -> None:
        self._store = store
        self._ref = ref
        # The analysis id a create with this key writes.
        self.analysis_id = derived_id
        self._hash = request_hash
        self._answer_of = answer_of
        self.replay: StoredAnswer | None = None
        # The answer `record` stored, for the request to send without building it again.
        self.stored: StoredAnswer | None = None

    @property
    def ref(self) -> firestore.AsyncDocumentReference:
        return self._ref

    def found(self, data: dict[str, Any] | None) -> bool:
        # Called again on every attempt of the transaction: only the last read counts.
        self.replay = None
        if data is None:
            return False
        if data.get("state") == DELETED:
            raise _deleted()
        now = utc_now()
        if _before(data.get("expires_at"), now):
            return False  # overwritten by this request's record
        if data.get("request_hash") != self._hash:
            raise mismatch()
        if data.get("state") == COMPLETED:
            self.replay = _stored_answer(data)
            return True
        if _before(data.get("lock_until"), now):
            return False  # an older release's claim whose holder died: run again
        raise _conflict()

    def record(self, queued: QueuedAnalysis) -> dict[str, Any]:
        answer = self.stored = self._answer_of(queued)
        now = utc_now()
        return {
            "state": COMPLETED,
            "request_hash": self._hash,
            "created_at": now,
            "expires_at": now + self._store.ttl,
            "status": answer.status,
            "body": answer.body,
            "headers": answer.headers,
        }

    async def amend(self, changes: dict[str, Any]) -> None:
        """Updates fields of the stored body that are known only after the commit (whether
        the publish was confirmed). Best effort: a replay then shows the committed value."""
        try:
            await self._ref.update(
                {f"body.{field}": value for field, value in changes.items()},
                timeout=self._store.timeout,
                retry=None,
            )
        except _RECORD_WRITE_ERRORS as exc:
            log.warning("idempotency_amend_failed", error=type(exc).__name__)


class IdempotencyStore:
    def __init__(self, db: firestore.AsyncClient, settings: RerunApiSettings) -> None:
        self._collection = db.collection(settings.idempotency_collection)
        self.ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
        self.timeout = settings.firestore_timeout_seconds

    def bury(self, writer: firestore.AsyncTransaction, record_ids: list[str]) -> None:
        """Stages over each record what a delete leaves of it
        (rerun_api.lifecycle.Tombstones): the state alone. The answer, the
        request hash and `expires_at` are removed, so nothing of the deleted analysis
        stays and the TTL policy never removes the tombstone: a record that expired away
        would let the key's retry create the analysis again under its derived id, a
        tombstone keeps answering 410. Merged, so a record already gone gets one too."""
        now = utc_now()
        for record in record_ids:
            writer.set(
                self._collection.document(record),
                {"state": DELETED, "created_at": now, **dict.fromkeys(_ANSWER_FIELDS, DELETE)},
                merge=True,
            )

    def receipt(
        self,
        *,
        uid: str,
        method: str,
        path: str,
        key: str,
        request_hash: str,
        answer_of: AnswerOf,
    ) -> KeyReceipt:
        ref = self._collection.document(record_id(uid, method, path, key))
        return KeyReceipt(self, ref, request_hash, answer_of, analysis_id_for(uid, key))
