"""The event stream's route: on GKE it reaches query-api through a Service of its own whose
backend timeout outlasts the stream's lifetime, while the list keeps GKE's default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conftest import load_docs

GKE_DEFAULT_TIMEOUT = 30


def query_api_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("query-api")
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_the_stream_gets_its_own_service_with_a_timeout_beyond_its_lifetime(
    render: Callable[..., str],
) -> None:
    docs = load_docs(render("default"))
    env = query_api_env(docs)
    lifetime = float(env["EVENTS_MAX_LIFETIME_SECONDS"])
    (policy,) = [d for d in docs if d["kind"] == "GCPBackendPolicy"]
    target = policy["spec"]["targetRef"]["name"]
    assert policy["spec"]["default"]["timeoutSec"] > lifetime > GKE_DEFAULT_TIMEOUT
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    (rule,) = [
        r
        for r in route["spec"]["rules"]
        if {"method": "GET", "path": {"type": "Exact", "value": "/analyses/events"}} in r["matches"]
    ]
    assert rule["backendRefs"][0]["name"] == target
    # Only the stream's Service carries the long timeout, and the LB probes it on /readyz.
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert target in services
    checks = [d for d in docs if d["kind"] == "HealthCheckPolicy"]
    assert target in {c["spec"]["targetRef"]["name"] for c in checks}


def test_lifetime_and_timeout_move_together(render: Callable[..., str]) -> None:
    docs = load_docs(render("default", "--set", "events.maxLifetimeSeconds=900"))
    assert query_api_env(docs)["EVENTS_MAX_LIFETIME_SECONDS"] == "900"
    (policy,) = [d for d in docs if d["kind"] == "GCPBackendPolicy"]
    assert policy["spec"]["default"]["timeoutSec"] == 960


def test_without_gateway_or_without_events_there_is_no_policy(render: Callable[..., str]) -> None:
    for extra in (("--set", "routing.mode=ingress"), ("--set", "events.enabled=false")):
        docs = load_docs(render("default", *extra))
        assert not [d for d in docs if d["kind"] == "GCPBackendPolicy"], extra
    off = load_docs(render("default", "--set", "events.enabled=false"))
    assert query_api_env(off)["EVENTS_ENABLED"] == "false"
