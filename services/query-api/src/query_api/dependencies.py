"""FastAPI dependencies of query-api: the read repository, the list versions and the
settings the lifespan built once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from flokraft_core.web.state import from_app_state
from query_api.event_streams import EventHub
from query_api.list_versions import ListVersions
from query_api.reads import AnalysisReads
from query_api.settings import QueryApiSettings

Reads = Annotated[AnalysisReads, Depends(from_app_state("reads", AnalysisReads))]
Versions = Annotated[ListVersions, Depends(from_app_state("versions", ListVersions))]
Settings = Annotated[QueryApiSettings, Depends(from_app_state("settings", QueryApiSettings))]
Hub = Annotated[EventHub, Depends(from_app_state("event_hub", EventHub))]
