"""FastAPI dependencies of query-api: the read repository, list versions and settings,
built once at start-up (app.state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.analysis_reads import AnalysisReads
from query_api.list_versions import ListVersions
from query_api.settings import QueryApiSettings


def get_reads(request: Request) -> AnalysisReads:
    reads: AnalysisReads = request.app.state.reads
    return reads


def get_versions(request: Request) -> ListVersions:
    versions: ListVersions = request.app.state.versions
    return versions


def get_app_settings(request: Request) -> QueryApiSettings:
    settings: QueryApiSettings = request.app.state.settings
    return settings


Reads = Annotated[AnalysisReads, Depends(get_reads)]
Versions = Annotated[ListVersions, Depends(get_versions)]
Settings = Annotated[QueryApiSettings, Depends(get_app_settings)]
