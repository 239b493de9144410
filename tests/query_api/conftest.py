"""query-api integration fixtures: the real service as a subprocess, on the session's
Firestore emulator, with a project of its own per module (so tests never see each
other's data), and helpers to write documents and call it over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud import firestore as gfirestore

from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.support.sse import EventStream

COLLECTION = "analyses"
# Every query-api of the tests signs page tokens with this (the chart takes it from a
# Secret, `make dev` generates one).
PAGE_TOKEN_SECRET = "tests-only-page-token-secret-0123456789"


@dataclass
class QueryApi:
    process: ManagedProcess
    project: str
    issuer: TestIssuer
    db: gfirestore.Client

    @property
    def url(self) -> str:
        return self.process.url

    def get(
        self,
        path: str,
        uid: str | None = None,
        *,
        admin: bool = False,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if uid is not None:
            sent.update(self.issuer.headers(uid, admin=admin))
        return httpx.get(self.url + path, params=params, headers=sent, timeout=30)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines


def start_query_api(
    firestore_host: str, issuer: TestIssuer, project: str, **env: str
) -> ManagedProcess:
    proc = service(
        "query-api",
        "query_api.main",
        {
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": project,
            "RATE_LIMIT": "100000/minute",
            "RATE_LIMIT_PER_IP": "100000/minute",
            "PAGE_TOKEN_SECRET": PAGE_TOKEN_SECRET,
            **issuer.env(),
            **env,
        },
    )
    return proc.start(ready_path="/healthz", timeout=60)


@contextmanager
def running_query_api(
    firestore_host: str, issuer: TestIssuer, prefix: str = "qa", **env: str
) -> Iterator[QueryApi]:
    """A query-api process with a project of its own (settings from `env`), and a client."""
    project = f"{prefix}-{uuid.uuid4().hex[:12]}"
    proc = start_query_api(firestore_host, issuer, project, **env)
    db = gfirestore.Client(project=project)
    try:
        yield QueryApi(process=proc, project=project, issuer=issuer, db=db)
    finally:
        proc.stop()
        db.close()


@pytest.fixture(scope="module")
def api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    with running_query_api(firestore.host, issuer, MEMORY_LOG_INTERVAL_SECONDS="0.5") as it:
        yield it


@pytest.fixture
def uid() -> str:
    """A user of this test only, so tests sharing the module's project stay apart."""
    return f"u{uuid.uuid4().hex[:12]}"


BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def analysis_doc(user_id: str, index: int, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "user_id": user_id,
        "timestamp": BASE_TIME + timedelta(minutes=index),
        "dance_type": "salsa",
        "dancers": ["lead", "follow"],
        "analysis_type": "couple",
        "status": "done",
        "processed": True,
        "total_score": 80.0 + index % 10,
        "text": "report " * 500,
        "video_url": f"gs://videos/{user_id}-{index}.mp4",
        "generation": 1,
        "progress": 1.0,
        "error": None,
    }
    doc.update(overrides)
    return doc


Writer = Callable[..., list[str]]


@pytest.fixture
def write(api: QueryApi) -> Writer:
    """write(user_id, n, **overrides) -> the new ids, oldest first."""

    def _write(user_id: str, n: int, **overrides: Any) -> list[str]:
        batch = api.db.batch()
        ids = []
        call = uuid.uuid4().hex[:6]
        for index in range(n):
            doc_id = f"{user_id}-{call}-{index:04d}"
            batch.set(
                api.db.collection(COLLECTION).document(doc_id),
                analysis_doc(user_id, index, **overrides),
            )
            ids.append(doc_id)
        batch.commit()
        return ids

    return _write


# --- event streams (test_events.py, test_event_caps.py) --------------------------------


def assert_served(open_stream: Callable[[], EventStream], within: float = 0) -> None:
    """Opens a stream, again and again for up to `within` seconds while it is refused (a
    closed stream frees its place once the server has noticed the hang-up), asserts it
    was served (200) and closes it."""
    deadline = time.monotonic() + within
    while True:
        stream = open_stream()
        stream.close()
        if stream.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stream.status == 200, stream.body


def ends_with_reconnect(stream: EventStream, reason: str, timeout: float = 10) -> float:
    """Asserts the next event is `reconnect` for `reason` and the stream then ends;
    returns when it ended (monotonic)."""
    goodbye = stream.next(timeout=timeout)
    assert (goodbye.event, goodbye.json) == ("reconnect", {"reason": reason})
    assert goodbye.retry == 3000
    assert stream.ended.wait(5)
    return time.monotonic()
