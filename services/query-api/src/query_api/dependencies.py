"""FastAPI dependencies of query-api: the read repository the lifespan built once, and
the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from flokraft_core.analysis_reads import AnalysisReads
from flokraft_core.web.state import from_app_state
from query_api.settings import QueryApiSettings

Reads = Annotated[AnalysisReads, Depends(from_app_state("reads", AnalysisReads))]
Settings = Annotated[QueryApiSettings, Depends(from_app_state("settings", QueryApiSettings))]
