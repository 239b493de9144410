"""rerun-api configuration (environment variables; see the README's configuration table)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.video_urls import VideoSourceSettings


class RerunApiSettings(HttpServiceSettings, VideoSourceSettings):
    service_name: str = "rerun-api"
    port: int = Field(8002, ge=1, le=65535)
    rate_limit: str = "10/minute"
    max_active_analyses_per_user: int = Field(
        5, ge=1, description="Queued-or-running analyses a user may have; more answers 429."
    )
    idempotency_ttl_seconds: int = Field(86400, ge=60, description="Idempotency-Key lifetime.")
    outbox_max_age_seconds: float = Field(
        30.0, ge=0, description="Age after which a pending publish is retried by the reconciler."
    )
    outbox_scan_interval_seconds: float = Field(
        10.0, gt=0, description="How often the reconciler looks for pending publishes."
    )
    outbox_batch_size: int = Field(
        100, ge=1, le=500, description="Most pending publishes handled per reconciler pass."
    )
    sweep_interval_seconds: float = Field(
        60.0, gt=0, description="How often the sweeper looks for stale work."
    )
    sweep_running_after_seconds: float = Field(
        900.0,
        gt=0,
        description="A running analysis without a write (lease renewal) for this long is "
        "stale: no worker and no delivery is live.",
    )
    sweep_queued_after_seconds: float = Field(
        1800.0,
        gt=0,
        description="A queued analysis with no publish pending and no write for this long "
        "is stale: its message was lost.",
    )
    sweep_max_redispatches: int = Field(
        2, ge=0, description="Times stale work is sent again before it is failed."
    )
    sweep_batch_size: int = Field(
        100, ge=1, le=500, description="Most stale analyses per status handled per pass."
    )
    idempotency_collection: str = Field(
        "idempotency_keys", description="Collection of stored answers to Idempotency-Keys."
    )
    firestore_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="Time budget of each Firestore call on a request path."
    )
    publish_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="How long a request waits for Pub/Sub before leaving it to the outbox.",
    )


@lru_cache(maxsize=1)
def get_settings() -> RerunApiSettings:
    return RerunApiSettings()
