"""The operators' dashboard: is polling fast and flat in memory, are commands answered,
is the analyzer keeping up, and is anything being OOM-killed.

Queries select services by their container name (the chart names each container after its
service), so they work with GKE managed Prometheus and with prometheus-operator alike.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.models.dashboard import DataSourceRef

UID = "flokraft-overview"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
MIB = 2**20

# Memory limits from values.yaml, drawn as thresholds so a creeping RSS stands out.
LIMITS_MIB = {"query-api": 256, "rerun-api": 256, "analyzer": 2048}


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)


def timeseries(title: str, unit: str, *queries: Dataquery, description: str = "") -> Timeseries:
    panel = Timeseries().title(title).unit(unit).datasource(DATASOURCE).height(8).span(12)
    if description:
        panel = panel.description(description)
    for q in queries:
        panel = panel.with_target(q)
    return panel


def latency_quantiles(container: str, handler: str, method: str) -> list[Dataquery]:
    selector = f'container="{container}", handler="{handler}", method="{method}"'
    return [
        query(
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{selector}}}[{RATE}])))",
            f"p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


def memory_panel(container: str) -> Timeseries:
    limit = LIMITS_MIB[container]
    return timeseries(
        f"{container} memory (limit {limit} MiB)",
        "bytes",
        query(f'process_resident_memory_bytes{{container="{container}"}}', "{{pod}}"),
        description="Resident memory per pod. Flat is the goal; the pod limit is the line "
        "the kernel enforces.",
    ).max(limit * MIB)


def build() -> Dashboard:
    return (
        Dashboard("flokraft")
        .uid(UID)
        .tags(["flokraft", "generated"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_row(Row("Polling: query-api"))
        .with_panel(
            timeseries(
                "GET /analyses latency (target < 100 ms)",
                "s",
                *latency_quantiles("query-api", "/analyses", "GET"),
            )
        )
        .with_panel(
            timeseries(
                "query-api requests by route and status",
                "reqps",
                query(
                    'sum by (handler, status) (rate(http_requests_total{container="query-api"}'
                    f"[{RATE}]))",
                    "{{handler}} {{status}}",
                ),
                description="304s are polls answered from the ETag; 429s are rate-limited clients.",
            )
        )
        .with_panel(memory_panel("query-api"))
        .with_panel(
            timeseries(
                "Full pages served (maximum page size)",
                "short",
                query(f"sum(rate(query_api_full_pages_total[{RATE}]))", "full pages/s"),
            )
        )
        .with_row(Row("Commands: rerun-api"))
        .with_panel(
            timeseries(
                "POST /analyses/{id}/rerun latency (seed target < 1 s)",
                "s",
                *latency_quantiles("rerun-api", "/analyses/{analysis_id}/rerun", "POST"),
            )
        )
        .with_panel(
            timeseries(
                "Outbox: publishes pending and re-published",
                "short",
                query("max(rerun_api_outbox_last_pending)", "pending", "A"),
                query(
                    f"sum(rate(rerun_api_outbox_republished_total[{RATE}]))", "re-published/s", "B"
                ),
                description="Pending stays at 0 while Pub/Sub accepts publishes at once.",
            )
        )
        .with_panel(memory_panel("rerun-api"))
        .with_panel(
            timeseries(
                "rerun-api requests by route and status",
                "reqps",
                query(
                    'sum by (handler, status) (rate(http_requests_total{container="rerun-api"}'
                    f"[{RATE}]))",
                    "{{handler}} {{status}}",
                ),
            )
        )
        .with_row(Row("Work: analyzer"))
        .with_panel(
            timeseries(
                "Jobs by outcome",
                "short",
                query(f"sum by (outcome) (rate(analyzer_jobs_total[{RATE}]))", "{{outcome}}"),
            )
        )
        .with_panel(
            timeseries(
                "Child processes killed, by reason",
                "short",
                query(
                    f"sum by (reason) (increase(analyzer_child_kills_total[{RATE}]))", "{{reason}}"
                ),
                description="A memory kill here is one analysis; the worker and the APIs live on.",
            )
        )
        .with_panel(
            timeseries(
                "Job duration",
                "s",
                query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(analyzer_job_duration_seconds_bucket[{RATE}])))",
                    "p50",
                    "A",
                ),
                query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(analyzer_job_duration_seconds_bucket[{RATE}])))",
                    "p95",
                    "B",
                ),
            )
        )
        .with_panel(
            timeseries(
                "Per-job peak memory of the child (p95)",
                "bytes",
                query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(analyzer_job_peak_memory_bytes_bucket[{RATE}])))",
                    "p95",
                ),
            )
        )
        .with_panel(memory_panel("analyzer"))
        .with_panel(
            Stat()
            .title("Jobs in flight")
            .datasource(DATASOURCE)
            .height(8)
            .span(12)
            .with_target(query("sum(analyzer_jobs_in_flight)", "in flight"))
        )
    )
