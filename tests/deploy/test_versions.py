"""One version for the APIs and the chart: each service's package version (pyproject and
the installed metadata the app reads) is the chart's appVersion, which is also the
chart's own version; the OpenAPI documents (served and committed) say the same."""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = yaml.safe_load((ROOT / "helm" / "flokraft" / "Chart.yaml").read_text())
SERVICES = {
    "query-api": "flokraft-query-api",
    "rerun-api": "flokraft-rerun-api",
    "analyzer": "flokraft-analyzer",
}


def test_the_chart_has_one_version() -> None:
    assert str(CHART["appVersion"]) == str(CHART["version"])


@pytest.mark.parametrize(("service", "dist"), SERVICES.items())
def test_each_service_is_the_charts_app_version(service: str, dist: str) -> None:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert project["project"]["name"] == dist
    assert project["project"]["version"] == CHART["appVersion"]
    assert importlib.metadata.version(dist) == CHART["appVersion"]


def test_the_api_documents_carry_it() -> None:
    from query_api.main import create_app as query_app
    from query_api.settings import QueryApiSettings
    from rerun_api.main import create_app as rerun_app
    from rerun_api.settings import RerunApiSettings

    assert query_app(QueryApiSettings()).openapi()["info"]["version"] == CHART["appVersion"]
    assert rerun_app(RerunApiSettings()).openapi()["info"]["version"] == CHART["appVersion"]
    for name in ("query-api", "rerun-api"):
        committed = json.loads((ROOT / "clients" / "openapi" / f"{name}.json").read_text())
        assert committed["info"]["version"] == CHART["appVersion"]
