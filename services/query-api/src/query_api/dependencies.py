"""FastAPI dependencies of query-api: the read repository and the settings on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.analysis_reads import AnalysisReads
from query_api.settings import QueryApiSettings


def get_reads(request: Request) -> AnalysisReads:
    reads: AnalysisReads = request.app.state.reads
    return reads


def get_app_settings(request: Request) -> QueryApiSettings:
    settings: QueryApiSettings = request.app.state.settings
    return settings


Reads = Annotated[AnalysisReads, Depends(get_reads)]
Settings = Annotated[QueryApiSettings, Depends(get_app_settings)]
