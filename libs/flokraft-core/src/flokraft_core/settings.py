"""Configuration from environment variables, one settings class per service.

The same code runs against real GCP or the local emulators: the Google client libraries
switch to an emulator on their own when FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST
are set, so nothing here has an "emulator mode".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, HttpUrl, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    """Settings every service shares. Field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = Field("flokraft", description="Name used in logs and metrics.")
    google_cloud_project: str = Field(
        "demo-flokraft", description="GCP project id (any id works with the emulators)."
    )
    firestore_database: str = Field("(default)", description="Firestore database id.")
    firestore_collection: str = Field("analyses", description="Collection holding analyses.")

    pubsub_topic: str = Field("analysis-jobs", description="Topic that carries job messages.")
    pubsub_subscription: str = Field(
        "analysis-jobs-analyzer", description="The analyzer's subscription on the job topic."
    )
    pubsub_dead_letter_subscription: str = Field(
        "analysis-jobs-dead-letter-analyzer",
        description="Subscription on the dead-letter topic, drained by the analyzer.",
    )

    auth_jwks_url: HttpUrl = Field(
        HttpUrl(
            "https://www.googleapis.com/service_accounts/v1/jwk/"
            "securetoken@system.gserviceaccount.com"
        ),
        description="JWKS URL whose keys sign bearer tokens (Firebase's by default).",
    )
    auth_issuer: str = Field(
        "https://securetoken.google.com/demo-flokraft",
        description="Required `iss` of bearer tokens.",
    )
    auth_audience: str = Field("demo-flokraft", description="Required `aud` of bearer tokens.")
    auth_jwks_cache_seconds: int = Field(300, ge=0, description="How long fetched keys are kept.")
    auth_leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew allowed.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="json: one JSON object a line (containers); console: readable, colored "
        "lines; auto: console when stdout is a terminal, else json.",
    )
    memory_limit_bytes: int | None = Field(
        None,
        gt=0,
        description="Memory limit exported when the container's cgroup sets none "
        "(the cgroup's memory.max wins).",
    )
    memory_log_interval_seconds: float = Field(
        60.0, gt=0, description="How often the process logs its RSS."
    )
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="Time budget of each dependency check in /readyz."
    )

    @field_validator("google_cloud_project")
    @classmethod
    def _project_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class HttpServiceSettings(CoreSettings):
    """Settings of the two HTTP APIs."""

    host: str = Field("0.0.0.0", description="Interface uvicorn binds.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    rate_limit: str = Field(
        "60/minute",
        description="Per-user limit in `limits` notation, e.g. '60/minute;1000/hour'.",
    )
    rate_limit_storage_uri: str = Field(
        "memory://",
        description="`limits` storage: memory:// (per replica) or redis://host:6379 (shared).",
    )


@lru_cache(maxsize=1)
def core_settings() -> CoreSettings:
    return CoreSettings()
