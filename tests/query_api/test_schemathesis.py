"""Property-based fuzzing of the running query-api from its own OpenAPI document, with
every check schemathesis has (tests/support/fuzzing.py) in its examples, coverage and
fuzzing phases and, along the document's links, its stateful phase. Bounded examples per
operation keep it to about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.query_api.conftest import QueryApi, analysis_doc
from tests.support.fuzzing import ACCEPTANCES, check_all, openapi_schema, stateful_failures

OPERATIONS = [
    {
        # A page_token is signed by the server: a value that matches its documented
        # pattern but that the API did not issue for this list is answered with the
        # documented 400. No schema can say which values carry a valid signature.
        "include-operation-id": ["listAnalyses", "listAllAnalyses"],
        "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTANCES, "400"]}},
    },
    {
        # The stream never ends on its own: read its first event (`ready`, sent at once).
        "include-operation-id": "streamAnalysisEvents",
        "max-stream-events": 1,
        "request-timeout": 10,
    },
]


@pytest.fixture(scope="module")
def api_schema(api: QueryApi) -> OpenApiSchema:
    return openapi_schema(api.url, OPERATIONS)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def fuzz_data(api: QueryApi) -> None:
    col = api.db.collection("analyses")
    batch = api.db.batch()
    for index in range(12):
        batch.set(col.document(f"fuzz-{index}"), analysis_doc("fuzz", index))
    batch.commit()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_breaks_the_api(case: schemathesis.Case, api: QueryApi, fuzz_data: None) -> None:
    for admin in (False, True):
        headers = api.issuer.headers("fuzz", admin=admin)
        response = case.call(base_url=api.url, headers=headers, timeout=30)
        check_all(case, response, headers)


def test_sequences_along_the_links_break_nothing(
    api_schema: OpenApiSchema, api: QueryApi, fuzz_data: None
) -> None:
    # `fuzz` owns 12 analyses: with small pages, listAnalyses -> next page is followed.
    # Reads only: every sequence meets the same state with the same user.
    linked = stateful_failures(
        api_schema, lambda: api.issuer.headers("fuzz", admin=True), max_examples=15, steps=5
    )
    assert linked > 0
