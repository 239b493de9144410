"""The overview dashboard: the questions on-call asks first.

- Is the polling API healthy? Latency, error and 429 ratios, ready replicas.
- Which pod is growing, and how close is each to its memory limit?
- Are analyses failing or backing up? Outcomes, in flight against capacity, backlog age.
- Is Kubernetes fighting us? Restarts, OOM kills, autoscalers at their maximum.

The analyzer's own dashboard (analyzer.py) goes deeper into the work.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries

from flokraft_observability.panels import (
    APIS,
    JOB_SUBSCRIPTION,
    RATE,
    SERVICES,
    histogram_quantile,
    kube,
    new_dashboard,
    ours,
    timeseries,
)

UID = "flokraft-overview"
# Each handler serves one method; the queries stay short enough for the chart's ConfigMap
# to pass yamllint's line length.
LIST = 'handler="/analyses"'
RERUN = 'handler="/analyses/{analysis_id}/rerun"'
# Firestore reads are labelled by route template (flokraft_core.read_costs).
LIST_READS = 'route="/analyses"'


SERVICE_CONTAINERS = f'container=~"{SERVICES}"'
DEPLOYMENTS = f'deployment=~".*-({SERVICES})"'
OOM_KILLED = ', reason="OOMKilled"'
MEMORY_LIMITS = 'resource="memory", ' + SERVICE_CONTAINERS


def quoted(value: str) -> str:
    return f'"{value}"'


def ratio(status: str) -> str:
    """Share of each API's requests answered with `status`; 0 (not "no data") while
    there are none. The denominator is matched on (cluster, container), so it needs no
    selector of its own beyond the namespace."""
    by = "sum by (cluster, container)"
    every = f"rate(http_requests_total{ours(APIS)}[{RATE}])"
    matching = f"rate(http_requests_total{ours(APIS, 'status=~' + quoted(status))}[{RATE}])"
    in_namespace = f'rate(http_requests_total{{namespace="$namespace"}}[{RATE}])'
    return (
        f"({by} ({matching}) or 0 * {by} ({every})) / on (cluster, container) {by} ({in_namespace})"
    )


def latency(title: str, selector: str) -> Timeseries:
    metric = "http_request_duration_seconds"
    return timeseries(
        title,
        "s",
        (histogram_quantile(0.5, metric, selector), "p50"),
        (histogram_quantile(0.99, metric, selector), "p99"),
    )


def by_hpa(metric: str) -> str:
    return f"max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_{metric}{kube()})"


def kubelet_memory_fraction() -> str:
    """Working set over limit as cAdvisor and kube-state-metrics see it; the limit side is
    matched on (namespace, pod, container), so it needs no selector of its own."""
    by = "max by (namespace, pod, container)"
    limits = 'kube_pod_container_resource_limits{resource="memory"}'
    return (
        f"{by} (container_memory_working_set_bytes{kube(SERVICE_CONTAINERS)})"
        f" / on (namespace, pod, container) {by} ({limits})"
    )


def own_memory_fraction() -> str:
    """The same from the services' own gauges (cgroup, else MEMORY_LIMIT_BYTES): there
    wherever cAdvisor or kube-state-metrics is not scraped."""
    by = "max by (pod, container)"
    return (
        f"{by} (flokraft_memory_working_set_bytes{ours(SERVICES)})"
        f" / {by} (flokraft_memory_limit_bytes{ours(SERVICES)})"
    )


def build() -> Dashboard:
    return (
        new_dashboard("flokraft overview", UID)
        .with_row(Row("Is the polling API healthy?"))
        .with_panel(latency("GET /analyses latency (target < 100 ms)", ours("query-api", LIST)))
        .with_panel(
            timeseries(
                "Error (5xx) and rate-limited (429) ratio",
                "percentunit",
                (ratio("5.."), "{{container}} 5xx"),
                (ratio("429"), "{{container}} 429"),
                description="Share of all requests. 5xx: a backing service is unreachable; "
                "429: clients above RATE_LIMIT.",
            )
        )
        .with_panel(
            timeseries(
                "Requests per second by status",
                "reqps",
                (
                    f"sum by (container, status) (rate(http_requests_total{ours(APIS)}[{RATE}]))",
                    "{{container}} {{status}}",
                ),
                description="304s are polls answered from the ETag.",
            )
        )
        .with_panel(
            timeseries(
                "Firestore documents read per poll",
                "short",
                (
                    f"sum(rate(firestore_documents_read_total{ours('query-api', LIST_READS)}"
                    f"[{RATE}])) / sum(rate(http_requests_total{ours('query-api', LIST)}[{RATE}]))",
                    "GET /analyses",
                ),
                description="What a poll costs the database (billed per document read). An "
                "unchanged poll reads only the caller's change marker (1), or nothing with "
                "LIST_ETAG_FROM_FEED; a changed page reads the marker and limit + 1 rows; "
                "query_api_list_answers_total says how many answers were which.",
            )
        )
        .with_panel(
            timeseries(
                "Ready replicas",
                "short",
                (
                    "sum by (deployment) (kube_deployment_status_replicas_available"
                    f"{kube(DEPLOYMENTS)})",
                    "{{deployment}} available",
                ),
                (f"count by (container) (up{ours(SERVICES)} == 1)", "{{container}} scraped"),
                description="Available replicas (kube-state-metrics) and pods answering /metrics.",
            )
        )
        .with_row(Row("Which pod is growing?"))
        .with_panel(
            timeseries(
                "Memory: working set / limit",
                "percentunit",
                (kubelet_memory_fraction(), "{{pod}} (cAdvisor)"),
                (own_memory_fraction(), "{{pod}}"),
                description="What the OOM killer weighs against the container limit: "
                "cAdvisor's working set ÷ kube-state-metrics' limit, and the same cgroup "
                "figures from the services' own gauges (the fallback where those two are "
                "not scraped; both lines coincide where they are).",
            ).max(1)
        )
        .with_panel(
            timeseries(
                "Memory per pod: working set and RSS",
                "bytes",
                (
                    f"max by (pod) (flokraft_memory_working_set_bytes{ours(SERVICES)})",
                    "{{pod}} working set",
                ),
                (f"max by (pod) (process_resident_memory_bytes{ours(SERVICES)})", "{{pod}} RSS"),
                description="Flat is the goal. RSS is the Python process alone; the working "
                "set is its container's cgroup (with the analyzer's children); where a process "
                "has no limited cgroup (locally), its process tree's RSS.",
            )
        )
        .with_row(Row("Are analyses failing or backing up?"))
        .with_panel(
            timeseries(
                "Job attempts per second by outcome",
                "ops",
                (
                    f"sum by (outcome) (rate(analyzer_jobs_total{ours('analyzer')}[{RATE}]))",
                    "{{outcome}}",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Jobs in flight against capacity",
                "short",
                (f"sum(analyzer_jobs_in_flight{ours('analyzer')})", "in flight"),
                (
                    f"sum(analyzer_max_concurrent_jobs{ours('analyzer')})",
                    "capacity (replicas x MAX_CONCURRENT_JOBS)",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Oldest queued job (Pub/Sub)",
                "s",
                (
                    "max(pubsub_googleapis_com:subscription_oldest_unacked_message_age"
                    f'{{subscription_id="{JOB_SUBSCRIPTION}"}})',
                    "oldest unacked",
                ),
                description="Cloud Monitoring's metric through GKE managed Prometheus; a "
                "running job's message counts as unacked until it ends.",
            )
        )
        .with_panel(
            timeseries(
                "Dead letters and outbox",
                "ops",
                (
                    "sum by (action) "
                    f"(rate(analyzer_dead_letters_total{ours('analyzer')}[{RATE}]))",
                    "dead letters {{action}}",
                ),
                (
                    f"sum(rate(rerun_api_outbox_republished_total{ours('rerun-api')}[{RATE}]))",
                    "outbox re-published",
                ),
            )
        )
        .with_row(Row("Is Kubernetes fighting us?"))
        .with_panel(
            timeseries(
                "Autoscalers: current, desired, maximum",
                "short",
                (
                    by_hpa("status_current_replicas"),
                    "{{horizontalpodautoscaler}} current",
                ),
                (
                    by_hpa("status_desired_replicas"),
                    "{{horizontalpodautoscaler}} desired",
                ),
                (
                    by_hpa("spec_max_replicas"),
                    "{{horizontalpodautoscaler}} max",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Restarts and OOM kills (last hour)",
                "short",
                (
                    "sum by (container) (increase(kube_pod_container_status_restarts_total"
                    f"{kube(SERVICE_CONTAINERS)}[1h]))",
                    "{{container}} restarts",
                ),
                (
                    "sum by (container) (kube_pod_container_status_last_terminated_reason"
                    f"{kube(SERVICE_CONTAINERS + OOM_KILLED)})",
                    "{{container}} last end OOMKilled",
                ),
            )
        )
        .with_row(Row("Commands: rerun-api"))
        .with_panel(
            latency(
                "POST /analyses/{id}/rerun latency (must answer < 1 s)", ours("rerun-api", RERUN)
            )
        )
        .with_panel(
            timeseries(
                "Outbox: publishes pending",
                "short",
                (f"max(rerun_api_outbox_last_pending{ours('rerun-api')})", "pending"),
                description="Stays at 0 while Pub/Sub accepts publishes at once.",
            )
        )
    )
