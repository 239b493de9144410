"""Fuzzes rerun-api's OpenAPI document against the real process with every check
schemathesis has (tests/support/fuzzing.py): examples, coverage and fuzzing per operation,
and the stateful phase along the document's links (create, then rerun, cancel, delete the
analysis it made)."""

from __future__ import annotations

import re
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

from rerun_api.idempotency import KEY_REGEX, MAX_KEY_LENGTH
from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import video_of
from tests.support.fuzzing import ACCEPTANCES, check_all, openapi_schema, stateful_failures

OPERATIONS = [
    {
        # Whether a schema-valid video_url is accepted depends on who asks (only addresses
        # of the caller's own uploads are, rerun_api.dependencies.video_owner), which no
        # schema can say: the documented 422 for another address is correct.
        "include-operation-id": "createAnalysis",
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTANCES, "422"]}},
    },
]


@pytest.fixture(scope="module")
def rerun_schema(api: RerunApi) -> OpenApiSchema:
    return openapi_schema(api.process.url, OPERATIONS)


schema = schemathesis.pytest.from_fixture("rerun_schema")


def _headers(api: RerunApi, case: schemathesis.Case) -> dict[str, str]:
    headers = api.headers("fuzzer")
    generated_key = (case.headers or {}).get("Idempotency-Key")
    if (
        isinstance(generated_key, str)
        and re.fullmatch(KEY_REGEX, generated_key)
        and len(generated_key) <= MAX_KEY_LENGTH
    ):
        # Generated keys repeat across examples with different bodies, which is a
        # correct 422 ("key reused"), not a schema violation; key validation has its
        # own tests.
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_yields_a_server_error(case: schemathesis.Case, api: RerunApi) -> None:
    headers = _headers(api, case)
    response = case.call(headers=headers, timeout=30)
    assert response.status_code < 500, (case.path, case.body, response.text)
    check_all(case, response, headers)


def test_sequences_along_the_links_break_nothing(
    rerun_schema: OpenApiSchema, api: RerunApi
) -> None:
    users: dict[str, str] = {}

    def new_user() -> dict[str, str]:
        user = f"fuzzer-{uuid.uuid4().hex[:10]}"
        headers = api.headers(user)
        users[headers["Authorization"]] = user
        return headers

    def own_video(case: schemathesis.Case, headers: dict[str, str]) -> None:
        # A create succeeds (and its links can be followed) only with a video of the
        # caller's own uploads, which no schema can say; everything else is generated.
        positive = case.meta is not None and case.meta.generation.mode.is_positive
        if positive and case.operation.label == "POST /analyses" and isinstance(case.body, dict):
            user = users[headers["Authorization"]]
            case.body["video_url"] = video_of(user, f"{uuid.uuid4().hex}.mp4")

    linked = stateful_failures(rerun_schema, new_user, max_examples=15, steps=5, prepare=own_video)
    assert linked > 0
