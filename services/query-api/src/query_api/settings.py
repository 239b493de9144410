"""query-api configuration (environment variables; see the README's configuration table)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator

from flokraft_core.settings import HttpServiceSettings


class QueryApiSettings(HttpServiceSettings):
    service_name: str = "query-api"
    port: int = Field(8001, ge=1, le=65535)
    # Two browser tabs polling every 3 s make 40 list calls a minute; detail views come on top.
    rate_limit: str = "120/minute"
    list_default_limit: int = Field(50, ge=1, le=100, description="Page size when none is given.")
    list_max_limit: int = Field(100, ge=1, le=1000, description="Largest page a client may ask.")
    firestore_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="Deadline of each Firestore call on a request path."
    )
    firestore_retry_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="Total time transient Firestore errors are retried (0: no retry).",
    )

    list_etag_max_age_seconds: float = Field(
        300.0,
        gt=0,
        description="Age after which a list ETag made from the change marker is no longer "
        "honoured, so a write that bypassed the services shows within it.",
    )
    list_etag_from_feed: bool = Field(
        False,
        description="Answer unchanged polls from the change feed's listener, reading nothing "
        "(a change then shows once the listener delivers it, not on the very next poll).",
    )
    change_feed_max_users: int = Field(
        20000, ge=100, description="Users whose latest marker version a replica keeps (LRU)."
    )
    change_feed_listener_max_markers: int = Field(
        1000,
        ge=10,
        description="Markers a listener's own snapshot may hold before a fresh listener "
        "replaces it (the client's CPU per change grows with that snapshot).",
    )
    change_feed_verify_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a version from the listener is trusted before one marker read "
        "confirms it again (bounds staleness if the listener stalls unnoticed).",
    )
    page_token_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="HMAC key of list page tokens (at least 32 characters; the same on every "
        "replica). Required: the service refuses to start without it.",
    )

    events_enabled: bool = Field(
        True, description="Serve GET /analyses/events (starts the change feed's listener)."
    )
    events_max_streams: int = Field(
        1200,
        ge=1,
        description="Open event streams per replica; past it the route answers 503. The "
        "default fits 256 Mi below the 85 % alert line (docs/benchmarks.md).",
    )
    events_max_streams_per_user: int = Field(
        5, ge=1, description="Open event streams per user on a replica (a few tabs); 429 past it."
    )
    events_max_streams_per_address: int = Field(
        25,
        ge=1,
        description="Open event streams per client address on a replica (IPv6: per /64); "
        "429 past it, so one address with many accounts cannot take a replica.",
    )
    events_full_retry_after_seconds: int = Field(
        30, ge=1, description="Retry-After of a stream refused at a cap (429 or 503)."
    )
    events_admission_concurrency: int = Field(
        8,
        ge=1,
        description="Streams set up at once (token check, marker read); the rest wait their "
        "turn, so a burst of opens costs no more memory than paced ones.",
    )
    events_max_lifetime_seconds: float = Field(
        300.0,
        gt=0,
        description="A stream ends (with a `reconnect` event) after at most this long, so "
        "load-balancer timeouts and rolling deploys never cut one mid-event.",
    )
    events_heartbeat_seconds: float = Field(
        15.0, gt=0, description="Interval of the heartbeat comment on an idle stream."
    )
    events_retry_ms: int = Field(
        3000, ge=0, description="The `retry:` hint: how long a client waits to reconnect."
    )
    events_shutdown_grace_seconds: float = Field(
        5.0,
        gt=0,
        le=9,
        description="On SIGTERM, how long streams get to send their final `reconnect` "
        "event before they are cut (inside uvicorn's 10 s graceful shutdown).",
    )
    events_send_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A stream whose client does not take an event within this is closed.",
    )
    events_demo_page: bool = Field(
        False,
        description="Serve the live demo page (/demo/events, signs in with a dev token); local "
        "profile only, never in a deployment.",
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> QueryApiSettings:
        if self.list_default_limit > self.list_max_limit:
            raise ValueError("list_default_limit must not exceed list_max_limit")
        return self


def page_token_key(settings: QueryApiSettings) -> bytes:
    """The page-token key, or a startup error naming the setting. Checked when the app
    starts (not at import, so tools can import the app to read its OpenAPI)."""
    if settings.page_token_secret is None:
        raise RuntimeError("PAGE_TOKEN_SECRET is not set (32+ characters, from a Secret)")
    return settings.page_token_secret.get_secret_value().encode()


@lru_cache(maxsize=1)
def get_settings() -> QueryApiSettings:
    return QueryApiSettings()
