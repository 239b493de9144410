"""A rerun-api process per test module, on the session's emulators, in a project of its
own. Tests use their own user ids so that rate limits and data never cross."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from google.cloud.firestore import Client as FirestoreClient

from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.rerun_api.support import apply_pubsub


@dataclass
class RerunApi:
    process: ManagedProcess
    project: str
    db: FirestoreClient
    http: httpx.Client
    issuer: TestIssuer

    def headers(self, uid: str, *, admin: bool = False, **extra: str) -> dict[str, str]:
        return {**self.issuer.headers(uid, admin=admin), **extra}


def service_env(project: str, issuer: TestIssuer, **overrides: str) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": project,
        **issuer.env(),
        "RATE_LIMIT": "100000/minute",
        "RATE_LIMIT_PER_IP": "100000/minute",
        "PUBLISH_TIMEOUT_SECONDS": "2",
        "FIRESTORE_TIMEOUT_SECONDS": "2",
        "OUTBOX_MAX_AGE_SECONDS": "30",
        "OUTBOX_SCAN_INTERVAL_SECONDS": "1",
        "MEMORY_LOG_INTERVAL_SECONDS": "3600",
        **overrides,
    }


def start_rerun_api(project: str, issuer: TestIssuer, **overrides: str) -> ManagedProcess:
    env = service_env(project, issuer, **overrides)
    return service("rerun-api", "rerun_api.main", env).start(ready_path="/healthz", timeout=60)


@pytest.fixture
def user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


@contextmanager
def running_rerun_api(issuer: TestIssuer, **overrides: str) -> Iterator[ManagedProcess]:
    """A rerun-api process in a fresh project with the job topology applied."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    apply_pubsub(project)
    process = start_rerun_api(project, issuer, **overrides)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def api(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> Iterator[RerunApi]:
    with running_rerun_api(issuer) as process:
        project = process.env["GOOGLE_CLOUD_PROJECT"]
        db = firestore_client(project)
        try:
            with httpx.Client(base_url=process.url, timeout=15) as http:
                yield RerunApi(process, project, db, http, issuer)
        finally:
            db.close()


def firestore_client(project: str) -> FirestoreClient:
    return FirestoreClient(project=project)
