"""analyzer configuration (environment variables; see the README's configuration table)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from flokraft_core.settings import CoreSettings
from flokraft_core.video_urls import VideoSourceSettings


class AnalyzerSettings(CoreSettings, VideoSourceSettings):
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
    max_download_bytes: int = Field(
        2 * 1024**3, gt=0, description="Size cap of a video fetched over https:// or gs://."
    )
    work_dir: Path = Field(
        Path(tempfile.gettempdir()), description="Where fetched videos are written."
    )
    download_timeout_seconds: float = Field(
        30.0, gt=0, description="Connect and per-read time budget of a video download."
    )
    download_deadline_seconds: float = Field(
        300.0, gt=0, description="Overall time budget of one video download."
    )
    download_min_bytes_per_second: int = Field(
        65536,
        ge=0,
        description="Slower downloads are abandoned (measured after their first 5 s; 0: off).",
    )
    source_max_attempts: int = Field(
        2,
        ge=1,
        le=100,
        description="Attempts of a job whose video cannot be fetched (fewer than MAX_ATTEMPTS).",
    )
    video_fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs fetched from even though not public (tests and local profile only).",
    )
    engine: str = Field(
        "analyzer.engine:analyze_video",
        description="Import path `module:function` of the analysis the child runs. A plugin "
        "point (same signature as analyze_video), e.g. for a different engine build.",
    )
    job_memory_backstop_mb: int = Field(
        256,
        ge=0,
        description="Kernel limit (RLIMIT_DATA) of the child above JOB_MEMORY_LIMIT_MB: stops an "
        "allocation faster than the RSS poll before it can reach the pod limit.",
    )
    worker_memory_headroom_mb: int = Field(
        200,
        ge=0,
        description="Memory kept for the worker itself: at start the analyzer refuses to run "
        "unless MAX_CONCURRENT_JOBS x (JOB_MEMORY_LIMIT_MB + JOB_MEMORY_BACKSTOP_MB) plus this "
        "fits in the container's memory limit (the cgroup's, else MEMORY_LIMIT_BYTES).",
    )
    memory_poll_seconds: float = Field(
        0.1, gt=0, le=5, description="How often the child's RSS is checked against its cap."
    )
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a claim (lease_owner/lease_until) stays valid without a renewal; "
        "renewed with every progress write.",
    )
    lease_margin_seconds: float = Field(
        120.0, ge=0, description="Pub/Sub lease extension beyond JOB_TIMEOUT_SECONDS."
    )
    firestore_timeout_seconds: float = Field(
        10.0, gt=0, description="Time budget of each Firestore call of the worker."
    )


@lru_cache(maxsize=1)
def get_settings() -> AnalyzerSettings:
    return AnalyzerSettings()
