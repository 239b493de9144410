"""One way to load an API's OpenAPI document for schemathesis, shared by both APIs' fuzz
tests."""

from __future__ import annotations

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

# Answers that reject invalid input. schemathesis' default list lacks 413, which the
# request guard gives a body over MAX_BODY_BYTES before anything parses it: a refusal too.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
_CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "5xx"]}}}
)


def openapi_schema(base_url: str) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=_CONFIG)
