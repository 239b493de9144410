"""schemathesis against a running API, with every check the installed version has
(the pytest equivalent of `--checks all`) and its examples, coverage, fuzzing and
stateful phases; shared by both APIs' fuzz tests.

Where an API's answer is right although a check would call it wrong, the API's test
passes a per-operation setting with the reason next to it; no check is turned off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import schemathesis
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.schemas import OpenApiSchema

# Answers that reject invalid input. schemathesis' default list lacks 413, which the
# request guard gives a body over MAX_BODY_BYTES before anything parses it: a refusal too.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
# What schemathesis expects of schema-valid input by default.
ACCEPTANCES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())


def openapi_schema(base_url: str, operations: Sequence[dict[str, Any]] = ()) -> OpenApiSchema:
    """The API's served document, set up for every phase; `operations`: schemathesis'
    per-operation settings (`include-operation-id`, `checks`, `max-stream-events`...)."""
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "5xx"]}},
            # Undeclared query parameters and headers are ignored, as HTTP APIs do (proxies
            # and browsers add headers of their own; the old frontend still sends
            # `offset`): they are not invalid input, so they are not generated as such.
            "generation": {"mode": "all", "allow-extra-parameters": False},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True},
            },
            "operations": list(operations),
        }
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def check_all(case: schemathesis.Case, response: Any, headers: dict[str, str]) -> None:
    """Every check on one answer (`headers`: what was sent, so `ignored_auth` knows the
    credentials)."""
    case.validate_response(response, checks=ALL_CHECKS, headers=headers)


def stateful_failures(
    schema: OpenApiSchema,
    headers_of: Callable[[], dict[str, str]],
    *,
    max_examples: int,
    steps: int,
    prepare: Callable[[schemathesis.Case, dict[str, str]], None] | None = None,
) -> int:
    """Runs the stateful phase (sequences of calls along the document's links) with every
    check on each step; raises the first failing sequence, else answers how many calls
    followed a link.

    `headers_of()` gives each sequence its credentials: a sequence that writes should
    start from a user of its own, so that every sequence meets the same state (Hypothesis
    replays sequences and refuses generation that depends on what earlier ones left).
    `prepare(case, headers)` may adjust a case before it is sent."""
    from hypothesis import HealthCheck, settings

    machine = schema.as_state_machine()
    linked = 0

    class Machine(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            self.headers = headers_of()

        def step(self, input: StepInput) -> StepOutput:
            nonlocal linked
            # A value taken from an earlier answer along a link (e.g. the created id).
            linked += input.transition is not None and bool(input.applied_parameters)
            return super().step(input)

        def before_call(self, case: schemathesis.Case) -> None:
            if prepare is not None:
                prepare(case, self.headers)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": self.headers, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=ALL_CHECKS,
                headers=self.headers,
                recorder=getattr(self, "recorder", None),
            )

    Machine.run(
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    return linked
