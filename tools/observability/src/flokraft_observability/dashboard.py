"""The overview dashboard: the questions on-call asks first.

- At a glance (stat panels with thresholds): is it up, are the replicas ready that should
  be, what share of requests fail, how old is the oldest queued job?
- Is the polling API healthy? Latency, error and 429 ratios, ready replicas, event streams.
- Which pod is growing, and how close is each to its memory limit?
- Are analyses failing or backing up? Outcomes, in flight against capacity, backlog age.
- Is Kubernetes fighting us? Restarts and OOM kills per pod, autoscalers at their maximum.

The analyzer's own dashboard (analyzer.py) goes deeper into the work.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries

from flokraft_observability.panels import (
    APIS,
    GREEN,
    JOB_SUBSCRIPTION,
    ORANGE,
    RATE,
    RED,
    SERVICES,
    histogram_quantile,
    kube,
    new_dashboard,
    ours,
    stat,
    thresholds,
    timeseries,
)

UID = "flokraft-overview"
# Each handler serves one method; the queries stay short enough for the chart's ConfigMap
# to pass yamllint's line length.
LIST = 'handler="/analyses"'
RERUN = 'handler="/analyses/{analysis_id}/rerun"'
# Firestore reads are labelled by route template (flokraft_core.store.read_costs).
LIST_READS = 'route="/analyses"'


SERVICE_CONTAINERS = f'container=~"{SERVICES}"'
DEPLOYMENTS = f'deployment=~".*-({SERVICES})"'
OOM_KILLED = ', reason="OOMKilled"'
MEMORY_LIMITS = 'resource="memory", ' + SERVICE_CONTAINERS


def quoted(value: str) -> str:
    return f'"{value}"'


def ratio(status: str, window: str = RATE) -> str:
    """Share of each API's requests answered with `status`; 0 (not "no data") while
    there are none. The denominator is matched on (cluster, container), so it needs no
    selector of its own beyond the namespace."""
    by = "sum by (cluster, container)"
    every = f"rate(http_requests_total{ours(APIS)}[{window}])"
    matching = f"rate(http_requests_total{ours(APIS, 'status=~' + quoted(status))}[{window}])"
    in_namespace = f'rate(http_requests_total{{namespace="$namespace"}}[{window}])'
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


def restarts(window: str) -> str:
    """Container restarts per (namespace, pod, container) within the window."""
    return f"increase(kube_pod_container_status_restarts_total{kube(SERVICE_CONTAINERS)}[{window}])"


def oom_kills(window: str) -> str:
    """Restarts within the window, counted only for containers whose last end was an OOM
    kill (kube-state-metrics' reason is 1 for it, else 0 or absent): each kill counts once,
    as the restart it caused, and a reason that stays set adds nothing later."""
    reason = (
        "max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason"
        f"{kube(SERVICE_CONTAINERS + OOM_KILLED)})"
    )
    return f"{restarts(window)} * on (namespace, pod, container) group_left {reason}"


def at_a_glance(dashboard: Dashboard) -> Dashboard:
    """The four on-call questions, one stat panel each, coloured by the alerts' limits."""
    available = (
        f"sum by (deployment) (kube_deployment_status_replicas_available{kube(DEPLOYMENTS)})"
    )
    desired = f"sum by (deployment) (kube_deployment_spec_replicas{kube(DEPLOYMENTS)})"
    return (
        dashboard.with_row(Row("At a glance"))
        .with_panel(
            stat(
                "Is it up? Pods scraped",
                "short",
                [(f"sum by (container) (up{ours(SERVICES)})", "{{container}}")],
                thresholds(RED, (1, GREEN)),
                description="Pods of each service answering /metrics. Red at 0: "
                "FlokraftApiDown / FlokraftAnalyzerDown fire after 5 / 10 minutes of it.",
                no_value="0",
            )
        )
        .with_panel(
            stat(
                "Ready replicas / desired",
                "percentunit",
                [(f"{available} / {desired}", "{{deployment}}")],
                thresholds(RED, (0.5, ORANGE), (1, GREEN)),
                description="Available replicas (ready for minReadySeconds) over the "
                "Deployment's desired count (kube-state-metrics). Below 100 % during a "
                "rollout or a scale-up; red under half.",
            )
        )
        .with_panel(
            stat(
                "Error ratio (5xx, 5 min)",
                "percentunit",
                [(ratio("5..", "5m"), "{{container}}")],
                thresholds(GREEN, (0.01, ORANGE), (0.05, RED)),
                description="Share of each API's requests answered 5xx over 5 minutes. "
                "Orange from 1 % (FlokraftApiErrors at > 0.5 requests/s). A dependency "
                "outage shows here as 503s with Retry-After, with the pods still up.",
            )
        )
        .with_panel(
            stat(
                "Oldest queued job",
                "s",
                [
                    (
                        "max(pubsub_googleapis_com:subscription_oldest_unacked_message_age"
                        f'{{subscription_id="{JOB_SUBSCRIPTION}"}})',
                        "oldest unacked",
                    )
                ],
                thresholds(GREEN, (600, ORANGE), (1800, RED)),
                description="Age of the job subscription's oldest unacked message (Cloud "
                "Monitoring). Red from 30 minutes: FlokraftJobBacklogOld.",
            )
        )
    )


def build() -> Dashboard:
    return (
        at_a_glance(new_dashboard("flokraft overview", UID))
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
        .with_panel(
            timeseries(
                "Event streams open per pod",
                "short",
                (
                    f"sum by (pod) (flokraft_event_streams_open{ours('query-api')})",
                    "{{pod}}",
                ),
                description="GET /analyses/events streams held by each query-api replica "
                "(at most events.maxStreamsPerReplica). Each ends with a `reconnect` after "
                "its lifetime or on shutdown, so a rollout moves them to the new pods.",
            )
        )
        .with_panel(
            timeseries(
                "Event streams refused at the replica cap",
                "ops",
                (
                    "sum by (pod) "
                    f"(rate(flokraft_event_streams_rejected_total{ours('query-api')}[{RATE}]))",
                    "{{pod}}",
                ),
                description="503 + Retry-After to a new stream at the per-replica cap; the "
                "frontend keeps polling instead. Sustained: FlokraftEventStreamsRejected.",
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
            stat(
                "Restarts and OOM kills per pod (in the time range)",
                "short",
                [
                    (f"sum by (pod) ({restarts('$__range')})", "{{pod}} restarts"),
                    (f"sum by (pod) ({oom_kills('$__range')})", "{{pod}} OOM kills"),
                ],
                thresholds(GREEN, (1, ORANGE)),
                description="Counted over the dashboard's time range: increase of "
                "kube-state-metrics' restart counter, and of those the restarts after an "
                "OOM kill. A pod that was never restarted shows 0 whatever its last end.",
                width=12,
                instant=True,
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
