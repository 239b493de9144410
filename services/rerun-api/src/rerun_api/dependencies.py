"""FastAPI dependencies of rerun-api: what the lifespan built once (commands, publisher,
idempotency store) and the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from flokraft_core.analysis_commands import AnalysisCommands
from flokraft_core.job_publisher import JobPublisher
from flokraft_core.web.state import from_app_state
from rerun_api.idempotency import IdempotencyStore
from rerun_api.settings import RerunApiSettings

Commands = Annotated[AnalysisCommands, Depends(from_app_state("commands", AnalysisCommands))]
Publisher = Annotated[JobPublisher, Depends(from_app_state("publisher", JobPublisher))]
Idempotency = Annotated[IdempotencyStore, Depends(from_app_state("idempotency", IdempotencyStore))]
Settings = Annotated[RerunApiSettings, Depends(from_app_state("settings", RerunApiSettings))]
