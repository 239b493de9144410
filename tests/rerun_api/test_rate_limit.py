"""The per-user rate limit on both POSTs (RATE_LIMIT's default, 10 a minute)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub, video_of
from tests.support.auth import TestIssuer
from tests.support.processes import ManagedProcess

BODY = {
    "video_url": video_of("alice"),
    "dance_type": "salsa",
    "dancers": ["a"],
    "analysis_type": "solo",
}


@pytest.fixture
def limited(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer, project_id: str
) -> Iterator[httpx.Client]:
    apply_pubsub(project_id)
    # No RATE_LIMIT override: the service's default applies.
    process = start_rerun_api(project_id, issuer, RATE_LIMIT="10/minute")
    try:
        with httpx.Client(base_url=process.url, timeout=15) as http:
            yield http
    finally:
        process.stop()


def test_the_eleventh_post_in_a_minute_is_429_for_that_user_only(
    limited: httpx.Client, issuer: TestIssuer
) -> None:
    alice = issuer.headers("alice")
    statuses = []
    for i in range(10):
        if i % 2:
            response = limited.post("/analyses", json=BODY, headers=alice)
        else:
            response = limited.post(f"/analyses/a-{uuid.uuid4().hex[:8]}/rerun", headers=alice)
        statuses.append(response.status_code)
    assert 429 not in statuses
    assert statuses.count(201) == 5

    limited_create = limited.post("/analyses", json=BODY, headers=alice)
    limited_rerun = limited.post("/analyses/anything/rerun", headers=alice)

    for response in (limited_create, limited_rerun):
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    bob_body = {**BODY, "video_url": video_of("bob")}
    assert (
        limited.post("/analyses", json=bob_body, headers=issuer.headers("bob")).status_code == 201
    )
