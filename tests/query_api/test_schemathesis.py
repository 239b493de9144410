"""Property-based fuzzing of the running service from its own OpenAPI document: no input
yields a 5xx, and the answers conform to the declared status codes, content types and
schemas. Bounded examples per operation keep it well under a minute."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.query_api.conftest import QueryApi
from tests.support.fuzzing import openapi_schema


@pytest.fixture(scope="module")
def api_schema(api: QueryApi) -> schemathesis.BaseSchema:
    return openapi_schema(api.url)


# The event stream never ends on its own; tests/query_api/test_events.py covers it.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/analyses/events")

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_data(api: QueryApi) -> None:
    col = api.db.collection("analyses")
    batch = api.db.batch()
    from tests.query_api.conftest import analysis_doc

    for index in range(12):
        batch.set(col.document(f"fuzz-{index}"), analysis_doc("fuzz", index))
    batch.commit()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: schemathesis.Case, api: QueryApi, fuzz_data: None) -> None:
    for admin in (False, True):
        response = case.call(base_url=api.url, headers=api.issuer.headers("fuzz", admin=admin))
        case.validate_response(response, checks=CHECKS)
