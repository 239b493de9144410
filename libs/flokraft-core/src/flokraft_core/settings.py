"""Configuration from environment variables, one settings class per service.

The same code runs against real GCP or the local emulators: the Google client libraries
switch to an emulator on their own when FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST
are set, so nothing here has an "emulator mode".
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, HttpUrl, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flokraft_core.web.forwarded import parse_networks


class CoreSettings(BaseSettings):
    """Settings every service shares. Field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = Field("flokraft", description="Name used in logs and metrics.")
    google_cloud_project: str = Field(
        "demo-flokraft", description="GCP project id (any id works with the emulators)."
    )
    firestore_database: str = Field("(default)", description="Firestore database id.")
    firestore_collection: str = Field("analyses", description="Collection holding analyses.")
    firestore_feed_collection: str = Field(
        "analysis_feeds",
        description="Collection of per-user change markers (one small document per user).",
    )

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
    auth_jwks_cache_seconds: int = Field(
        300, ge=0, description="Age after which keys are refreshed (in the background)."
    )
    auth_jwks_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="Time budget of one fetch of the JWKS."
    )
    auth_jwks_stale_seconds: float = Field(
        3600.0,
        gt=0,
        description="Keys whose last good fetch is older than this are reported stale "
        '(flokraft_dependency_up{dependency="jwks"} 0, a log line); they keep verifying.',
    )
    auth_max_token_bytes: int = Field(
        8192, ge=1024, le=65536, description="Longer bearer tokens get 401 before any decoding."
    )
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
        2.0,
        gt=0,
        le=30,
        description="Time budget of each background check of a shared dependency "
        "(Firestore, Pub/Sub); no probe runs one.",
    )
    dependency_check_interval_seconds: float = Field(
        30.0,
        gt=0,
        description="How often each replica checks its shared dependencies (one cheap call "
        "each) for flokraft_dependency_up and the logs.",
    )
    readiness_max_loop_lag_seconds: float = Field(
        2.0,
        gt=0,
        description="/readyz fails for 10 s after the event loop was blocked longer than this.",
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
    rate_limit_per_ip: str = Field(
        "600/minute",
        description="Per-client-IP limit counted before the token is verified (401, 413 and "
        "429 answers included).",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed (the "
        "load balancer's: 35.191.0.0/16,130.211.0.0/22 on GKE); empty trusts nobody.",
    )
    forwarded_for_client_position: int = Field(
        1,
        ge=1,
        le=10,
        description="Which X-Forwarded-For entry, counted from the end, the trusted proxy "
        "wrote for the client: 1 for a proxy that appends the peer it saw, 2 for Google's "
        "external Application Load Balancer (it appends the client, then its own address).",
    )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"not an address or network: {exc}") from exc
        return value

    max_body_bytes: int = Field(
        8192, ge=1024, le=1 << 20, description="Larger request bodies get 413 (never read)."
    )
    drain_seconds: float = Field(
        0.0,
        ge=0,
        le=120,
        description="On SIGTERM: /readyz fails at once and the server keeps answering this "
        "long (responses close their connections) before it stops accepting; the chart sets "
        "it from the readiness probe. 0: stop at once.",
    )
    max_header_bytes: int = Field(
        16384,
        ge=4096,
        le=1 << 20,
        description="Most bytes of a request line plus headers; more is answered 431 and "
        "the connection closed, whether the head arrives in pieces or at once.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="A connection that has not sent a complete request head this long after "
        "it opened (or after its last response) is closed: half-open and dripping clients "
        "hold nothing for long.",
    )

    @model_validator(mode="after")
    def _token_fits_in_headers(self) -> HttpServiceSettings:
        # Otherwise the 401 for a too-long token could never be answered.
        if self.max_header_bytes < self.auth_max_token_bytes + 2048:
            raise ValueError("max_header_bytes must exceed auth_max_token_bytes by 2 KiB")
        return self

    cors_allow_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated exact origins the browser frontend is served from, "
        "e.g. 'https://app.example.com,https://admin.example.com'. Empty: no CORS.",
    )
    cors_allow_origin_regex: str | None = Field(
        None,
        description="Further allowed origins as a pattern that must match the whole origin, "
        r"e.g. 'https://flokraft--pr-[0-9]+-[a-z0-9]+\.web\.app' for preview deployments.",
    )

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            problem = _origin_problem(origin)
            if problem:
                raise ValueError(f"{origin!r}: {problem}")
        return value

    @field_validator("cors_allow_origin_regex")
    @classmethod
    def _sane_pattern(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        # `.*` or a pattern missing its host part would let any site read the API's answers.
        if pattern.fullmatch("https://unrelated.invalid"):
            raise ValueError("the pattern admits any origin; name the hosts it should allow")
        return value


def _origin_problem(origin: str) -> str | None:
    """Why `origin` is not something a browser sends in `Origin`, or None. Browsers send
    `scheme://host[:port]` with a lower-case host and no path; anything else never
    matches, so it is refused here instead of failing silently in the browser."""
    if origin == "*":
        return "'*' is not allowed; list the exact origins (or use CORS_ALLOW_ORIGIN_REGEX)"
    parts = urlsplit(origin)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return "the port is not a number from 1 to 65535"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an origin is http(s)://host[:port]"
    if parts.path or parts.query or parts.fragment or parts.username or "@" in parts.netloc:
        return "an origin has no path, query or user part (no trailing slash either)"
    if origin != origin.lower():
        return "browsers send origins in lower case"
    return None
