"""The analyzer dashboard: is the work keeping up, and what does it cost?

Backlog and oldest-message age come from Cloud Monitoring's Pub/Sub metrics, under GKE
managed Prometheus's names (docs/observability.md gives stackdriver-exporter's); the rest
is what the analyzer exports and kube-state-metrics' view of its autoscaler.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from flokraft_observability.panels import (
    DEAD_LETTER_SUBSCRIPTION,
    JOB_SUBSCRIPTION,
    RATE,
    histogram_quantile,
    kube,
    new_dashboard,
    ours,
    timeseries,
)

UID = "flokraft-analyzer"
ANALYZER = ours("analyzer")
SUBSCRIPTIONS = f'{{subscription_id=~"{JOB_SUBSCRIPTION}|{DEAD_LETTER_SUBSCRIPTION}"}}'
HPA = kube('horizontalpodautoscaler=~".*analyzer"')


def build() -> Dashboard:
    return (
        new_dashboard("flokraft analyzer", UID)
        .with_row(Row("Backlog"))
        .with_panel(
            timeseries(
                "Undelivered messages (Pub/Sub)",
                "short",
                (
                    "max by (subscription_id) "
                    f"(pubsub_googleapis_com:subscription_num_undelivered_messages{SUBSCRIPTIONS})",
                    "{{subscription_id}}",
                ),
                description="The job subscription's backlog (what the autoscaler follows) "
                "and the dead-letter subscription's, which the analyzer drains.",
            )
        )
        .with_panel(
            timeseries(
                "Oldest unacked message age (Pub/Sub)",
                "s",
                (
                    "max by (subscription_id) "
                    f"(pubsub_googleapis_com:subscription_oldest_unacked_message_age{SUBSCRIPTIONS})",
                    "{{subscription_id}}",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Dead letters handled per second",
                "ops",
                (
                    f"sum by (action) (rate(analyzer_dead_letters_total{ANALYZER}[{RATE}]))",
                    "{{action}}",
                ),
                (
                    f"sum(rate(analyzer_invalid_messages_total{ANALYZER}[{RATE}]))",
                    "invalid messages",
                ),
            )
        )
        .with_row(Row("Capacity"))
        .with_panel(
            timeseries(
                "Jobs in flight against capacity",
                "short",
                (f"sum(analyzer_jobs_in_flight{ANALYZER})", "in flight"),
                (
                    f"sum(analyzer_max_concurrent_jobs{ANALYZER})",
                    "capacity (replicas x MAX_CONCURRENT_JOBS)",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Autoscaler replicas: current, desired, maximum",
                "short",
                (f"max(kube_horizontalpodautoscaler_status_current_replicas{HPA})", "current"),
                (f"max(kube_horizontalpodautoscaler_status_desired_replicas{HPA})", "desired"),
                (f"max(kube_horizontalpodautoscaler_spec_max_replicas{HPA})", "maximum"),
            )
        )
        .with_row(Row("Jobs"))
        .with_panel(
            timeseries(
                "Job attempts per second by outcome",
                "ops",
                (f"sum by (outcome) (rate(analyzer_jobs_total{ANALYZER}[{RATE}]))", "{{outcome}}"),
            )
        )
        .with_panel(
            timeseries(
                "Job duration by outcome (p50, p95)",
                "s",
                (
                    histogram_quantile(0.5, "analyzer_job_duration_seconds", ANALYZER, "outcome"),
                    "{{outcome}} p50",
                ),
                (
                    histogram_quantile(0.95, "analyzer_job_duration_seconds", ANALYZER, "outcome"),
                    "{{outcome}} p95",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Child memory against the cap",
                "bytes",
                (
                    histogram_quantile(0.95, "analyzer_job_peak_memory_bytes", ANALYZER),
                    "peak per job (p95)",
                ),
                (f"max(analyzer_child_tree_rss_bytes{ANALYZER})", "running tree (max over pods)"),
                (f"max(analyzer_child_rss_bytes{ANALYZER})", "running child (max over pods)"),
                (f"max(analyzer_job_memory_limit_bytes{ANALYZER})", "cap (JOB_MEMORY_LIMIT_MB)"),
                description="The cap is checked against the child's whole process tree.",
            )
        )
        .with_panel(
            timeseries(
                "Children killed in the last hour, by reason",
                "short",
                (
                    f"sum by (reason) (increase(analyzer_child_kills_total{ANALYZER}[1h]))",
                    "{{reason}}",
                ),
                description="A memory kill is one analysis; the worker and the APIs live on.",
            )
        )
        .with_panel(
            timeseries(
                "Worker pods: working set against the limit, worker RSS",
                "bytes",
                (
                    f"max by (pod) (flokraft_memory_working_set_bytes{ANALYZER})",
                    "{{pod}} working set",
                ),
                (f"max by (pod) (flokraft_memory_limit_bytes{ANALYZER})", "{{pod}} limit"),
                (f"max by (pod) (analyzer_worker_rss_bytes{ANALYZER})", "{{pod}} worker RSS"),
            )
        )
    )
