"""FastAPI dependencies of rerun-api: what the lifespan built once (commands, publisher,
idempotency store) and the settings. Only this module reads app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.analysis_commands import AnalysisCommands
from flokraft_core.job_publisher import JobPublisher
from rerun_api.idempotency import IdempotencyStore
from rerun_api.settings import RerunApiSettings


def get_commands(request: Request) -> AnalysisCommands:
    commands: AnalysisCommands = request.app.state.commands
    return commands


def get_publisher(request: Request) -> JobPublisher:
    publisher: JobPublisher = request.app.state.publisher
    return publisher


def get_idempotency_store(request: Request) -> IdempotencyStore:
    store: IdempotencyStore = request.app.state.idempotency
    return store


def get_app_settings(request: Request) -> RerunApiSettings:
    settings: RerunApiSettings = request.app.state.settings
    return settings


Commands = Annotated[AnalysisCommands, Depends(get_commands)]
Publisher = Annotated[JobPublisher, Depends(get_publisher)]
Idempotency = Annotated[IdempotencyStore, Depends(get_idempotency_store)]
Settings = Annotated[RerunApiSettings, Depends(get_app_settings)]
