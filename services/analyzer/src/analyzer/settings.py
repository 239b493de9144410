"""analyzer configuration (environment variables; see the README's configuration table)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from flokraft_core.settings import CoreSettings


class AnalyzerSettings(CoreSettings):
    service_name: str = "analyzer"
    host: str = Field("0.0.0.0", description="Interface of the health/metrics server.")
    port: int = Field(8003, ge=1, le=65535, description="Port of /healthz, /readyz, /metrics.")
    max_concurrent_jobs: int = Field(1, ge=1, le=16, description="Jobs run at once per process.")
    job_memory_limit_mb: int = Field(
        1536, ge=64, description="Memory cap of the child process that runs one analysis."
    )
    job_timeout_seconds: float = Field(900.0, gt=0, description="Time limit of one analysis.")
    max_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="Attempts before an analysis is marked failed "
        "(keep equal to the subscription's maxDeliveryAttempts).",
    )
    shutdown_grace_seconds: float = Field(
        60.0, ge=0, description="On SIGTERM, how long a running job may finish before it is nacked."
    )
    progress_interval_seconds: float = Field(
        2.0, gt=0, description="Least time between progress writes."
    )
    heartbeat_timeout_seconds: float = Field(
        30.0, gt=0, description="/healthz fails when the pull loop has not beaten for this long."
    )
    allow_file_urls: bool = Field(False, description="Accept file:// videos (local profile only).")
    allowed_file_roots: list[Path] = Field(
        default_factory=list, description="Directories file:// videos must lie below."
    )
    max_download_bytes: int = Field(
        2 * 1024**3, gt=0, description="Size cap of a video fetched over https:// or gs://."
    )
    work_dir: Path = Field(
        Path(tempfile.gettempdir()), description="Where fetched videos are written."
    )


@lru_cache(maxsize=1)
def get_settings() -> AnalyzerSettings:
    return AnalyzerSettings()
