"""The edge routes every public endpoint the services define, to the right service, and
nothing else. Endpoints come from the services' own OpenAPI (`app.openapi()["paths"]`), so a
new endpoint without a route (or a route without an endpoint) fails here.

Matching follows each routing object's semantics:
- HTTPRoute (Gateway API): Exact and PathPrefix (whole path segments); the most specific
  match wins: Exact over prefix, longer prefix first, a method match over none.
- Ingress for ingress-nginx with use-regex: each path is a regex anchored at the start,
  longer paths are tried first; methods are invisible to it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import load_docs

APPS = {"query-api": "query_api.main", "rerun-api": "rerun_api.main"}
# Served on every port but never public; none may be reachable through the edge.
INTERNAL = ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLE_ID = "an-analysis-id"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    service: str

    @property
    def sample(self) -> str:
        return re.sub(r"\{[^}]+\}", SAMPLE_ID, self.template)


@dataclass(frozen=True)
class Match:
    method: str | None
    kind: str  # Exact | PathPrefix | Regex
    value: str
    service: str

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if self.kind == "Exact":
            return path == self.value
        if self.kind == "PathPrefix":
            prefix = self.value.rstrip("/") or "/"
            return prefix == "/" or path == prefix or path.startswith(prefix + "/")
        return re.match(self.value, path, re.IGNORECASE) is not None

    def rank(self) -> tuple[int, int, int]:
        return (1 if self.kind == "Exact" else 0, len(self.value), 1 if self.method else 0)


@pytest.fixture(scope="module")
def operations() -> list[Operation]:
    ops: list[Operation] = []
    for service, module_name in APPS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            pytest.fail(
                f"{service}: cannot import {module_name} ({exc}); the route check needs its app"
            )
        app = getattr(module, "app", None)
        assert app is not None, f"{module_name} has no module-level `app`"
        paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
        assert paths, f"{service} defines no public endpoints in its OpenAPI"
        for template, item in paths.items():
            assert template not in INTERNAL, (
                f"{service}: {template} must be excluded from the OpenAPI"
            )
            for method in item:
                if method.upper() in METHODS:
                    ops.append(Operation(method.upper(), template, service))
    return ops


def service_components(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] == "Service"
    }


def httproute_matches(docs: list[dict[str, Any]]) -> list[Match]:
    components = service_components(docs)
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    out = []
    for rule in route["spec"]["rules"]:
        (backend,) = rule["backendRefs"]
        service = components[backend["name"]]
        for match in rule["matches"]:
            path = match.get("path", {"type": "PathPrefix", "value": "/"})
            out.append(Match(match.get("method"), path["type"], path["value"], service))
    return out


def ingress_matches(docs: list[dict[str, Any]]) -> list[Match]:
    components = service_components(docs)
    (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    out = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            service = components[path["backend"]["service"]["name"]]
            kind = {"Exact": "Exact", "Prefix": "PathPrefix"}.get(path["pathType"], "Regex")
            out.append(Match(None, kind, path["path"], service))
    return out


def route(matches: list[Match], method: str, path: str) -> str | None:
    candidates = [m for m in matches if m.matches(method, path)]
    if not candidates:
        return None
    return max(candidates, key=Match.rank).service


def check_no_internal_or_foreign_routes(matches: list[Match], operations: list[Operation]) -> None:
    for path in INTERNAL:
        for method in METHODS:
            assert route(matches, method, path) is None, f"{method} {path} must not be public"
    # A method no service defines (e.g. DELETE) is never routed anywhere.
    defined = {op.method for op in operations}
    for op in operations:
        for method in set(METHODS) - defined:
            assert route(matches, method, op.sample) is None, f"{method} {op.sample} is routed"


def check_every_match_has_an_endpoint(matches: list[Match], operations: list[Operation]) -> None:
    for match in matches:
        backs = [
            op
            for op in operations
            if op.service == match.service
            and (match.method is None or op.method == match.method)
            and match.matches(op.method, op.sample)
        ]
        assert backs, f"{match} routes to no endpoint of {match.service}"


@pytest.fixture(scope="module")
def default_docs(render: Callable[..., str]) -> list[dict[str, Any]]:
    return load_docs(render("default"))


def test_httproute_routes_every_endpoint_to_its_service(
    default_docs: list[dict[str, Any]], operations: list[Operation]
) -> None:
    matches = httproute_matches(default_docs)
    for op in operations:
        assert route(matches, op.method, op.sample) == op.service, f"{op.method} {op.template}"
    check_every_match_has_an_endpoint(matches, operations)
    check_no_internal_or_foreign_routes(matches, operations)
    # A request that is no endpoint but falls under a prefix (GET /analyses/x/rerun) may
    # only reach a service that serves that method, which then answers 404/405 itself.
    for op in operations:
        for method in {o.method for o in operations}:
            target = route(matches, method, op.sample)
            if target is not None:
                assert any(o.service == target and o.method == method for o in operations)


def test_ingress_routes_every_path_it_can(
    render: Callable[..., str], operations: list[Operation]
) -> None:
    """A classic Ingress cannot split one path by method. Everything else must be exact;
    the exceptions are exactly the operations whose path another service also serves."""
    docs = load_docs(
        render(
            "default",
            "--set",
            "routing.mode=ingress",
            "--set",
            "routing.hostnames={api.example.com}",
        )
    )
    assert not [d for d in docs if d["kind"] == "HTTPRoute"]
    matches = ingress_matches(docs)
    owners_by_path: dict[str, set[str]] = {}
    for op in operations:
        owners_by_path.setdefault(op.template, set()).add(op.service)
    misrouted = [op for op in operations if route(matches, op.method, op.sample) != op.service]
    for op in misrouted:
        assert len(owners_by_path[op.template]) > 1, f"{op.method} {op.template} is misrouted"
        # Shared paths go to the read side: polling must keep working.
        assert route(matches, op.method, op.sample) == "query-api"
    check_every_match_has_an_endpoint(matches, operations)
    for path in INTERNAL:
        assert route(matches, "GET", path) is None, f"{path} must not be public"


# The endpoints the frontend uses (the contract). The checks above read them from
# the apps; these run the same checks on the contract alone, and prove the checker fails
# on a wrong route, so a green result above means something.
CONTRACT = [
    Operation("GET", "/analyses", "query-api"),
    Operation("GET", "/analyses/{analysis_id}", "query-api"),
    Operation("GET", "/analyses/events", "query-api"),
    Operation("GET", "/admin/analyses", "query-api"),
    Operation("POST", "/analyses", "rerun-api"),
    Operation("POST", "/analyses/{analysis_id}/rerun", "rerun-api"),
    Operation("POST", "/analyses/{analysis_id}/cancel", "rerun-api"),
    Operation("DELETE", "/analyses/{analysis_id}", "rerun-api"),
]


def test_httproute_against_the_contract(default_docs: list[dict[str, Any]]) -> None:
    matches = httproute_matches(default_docs)
    for op in CONTRACT:
        assert route(matches, op.method, op.sample) == op.service, op
    check_every_match_has_an_endpoint(matches, CONTRACT)
    check_no_internal_or_foreign_routes(matches, CONTRACT)


def test_ingress_gap_is_only_the_shared_paths(render: Callable[..., str]) -> None:
    docs = load_docs(render("default", "--set", "routing.mode=ingress"))
    matches = ingress_matches(docs)
    misrouted = {
        (op.method, op.template)
        for op in CONTRACT
        if route(matches, op.method, op.sample) != op.service
    }
    assert misrouted == {("POST", "/analyses"), ("DELETE", "/analyses/{analysis_id}")}


def test_checker_catches_wrong_routes(default_docs: list[dict[str, Any]]) -> None:
    matches = httproute_matches(default_docs)
    # A route without method matches would send POST /analyses to query-api.
    methodless = [Match(None, m.kind, m.value, m.service) for m in matches]
    assert any(route(methodless, op.method, op.sample) != op.service for op in CONTRACT)
    # A catch-all exposes /healthz.
    with pytest.raises(AssertionError):
        check_no_internal_or_foreign_routes(
            [*matches, Match(None, "PathPrefix", "/", "query-api")], CONTRACT
        )
    # A route to a path no service serves.
    with pytest.raises(AssertionError):
        check_every_match_has_an_endpoint(
            [*matches, Match("GET", "Exact", "/debug", "query-api")], CONTRACT
        )
