"""What both dashboards are built from: the variables, the label selectors every query
uses, and small panel builders.

Every query selects by `cluster`, `namespace` and `container` (the chart names each
container after its service, and every scrape path it renders sets those labels), so two
releases or clusters never add up. `cluster` is a regex with `.*` for "all", which also
matches series that have no cluster label (a Prometheus without one); `namespace` is one
value at a time. The Pub/Sub subscriptions are hidden constant variables whose values are
placeholders the chart fills from files/pubsub-topology.yaml (names.py), so no
subscription name is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import (
    ConstantVariable,
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

from flokraft_observability import names

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
SERVICES = "query-api|rerun-api|analyzer"
APIS = "query-api|rerun-api"
# The job subscription and its dead-letter subscription, as dashboard variables.
JOB_SUBSCRIPTION = "$job_subscription"
DEAD_LETTER_SUBSCRIPTION = "$dead_letter_subscription"
GREEN, ORANGE, RED = "green", "orange", "red"


def ours(container: str, extra: str = "") -> str:
    """Label matchers of a series our services export."""
    op = "=~" if "|" in container else "="
    matchers = f'cluster=~"$cluster", namespace="$namespace", container{op}"{container}"'
    return "{" + matchers + (", " + extra if extra else "") + "}"


def kube(extra: str = "") -> str:
    """Label matchers of a kube-state-metrics or cAdvisor series of this release."""
    return '{cluster=~"$cluster", namespace="$namespace"' + (", " + extra if extra else "") + "}"


def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    return Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref)


def timeseries(
    title: str, unit: str, *exprs: tuple[str, str], description: str = "", width: int = 12
) -> Timeseries:
    """A time series panel; exprs are (PromQL, legend) pairs, given refIds A, B, ..."""
    panel = (
        Timeseries()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .fill_opacity(10)
    )
    if description:
        panel = panel.description(description)
    for index, (expr, legend) in enumerate(exprs):
        panel = panel.with_target(query(expr, legend, chr(ord("A") + index)))
    return panel


def thresholds(base: str, *steps: tuple[float, str]) -> ThresholdsConfig:
    """Absolute thresholds: `base` below the first step, then each (value, colour)."""
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)]
        )
    )


def stat(
    title: str,
    unit: str,
    exprs: Sequence[tuple[str, str]],
    steps: ThresholdsConfig,
    *,
    description: str,
    width: int = 6,
    no_value: str = "",
    instant: bool = False,
) -> Stat:
    """A stat panel: the last value of each series, coloured by `steps`. instant: the
    queries count over the whole time range ($__range), so one instant value is the
    answer."""
    panel = (
        Stat()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(5)
        .span(width)
        .description(description)
        .thresholds(steps)
        .color_mode(BigValueColorMode.BACKGROUND)
        .graph_mode(BigValueGraphMode.NONE if instant else BigValueGraphMode.AREA)
        .text_mode(BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if no_value:
        panel = panel.no_value(no_value)
    for index, (expr, legend) in enumerate(exprs):
        target = query(expr, legend, chr(ord("A") + index))
        panel = panel.with_target(target.instant() if instant else target)
    return panel


def histogram_quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{selector}[{RATE}])))"


def new_dashboard(title: str, uid: str) -> Dashboard:
    """A dashboard with the variables every flokraft dashboard has."""
    dashboard = (
        Dashboard(title)
        .uid(uid)
        .tags(["flokraft", "generated"])
        .refresh("30s")
        .time("now-3h", "now")
    )
    return (
        dashboard.with_variable(
            DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            QueryVariable("cluster")
            .label("Cluster")
            .datasource(DATASOURCE)
            .query(f'label_values(up{{container=~"{SERVICES}"}}, cluster)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query(f'label_values(up{{cluster=~"$cluster", container=~"{SERVICES}"}}, namespace)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
        # Hidden constants; the chart writes the subscriptions of its topology file here.
        .with_variable(
            ConstantVariable("job_subscription")
            .label("Job subscription")
            .value(names.JOB_SUBSCRIPTION)
        )
        .with_variable(
            ConstantVariable("dead_letter_subscription")
            .label("Dead-letter subscription")
            .value(names.DEAD_LETTER_SUBSCRIPTION)
        )
    )
