"""query-api configuration (environment variables; see the README's configuration table)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from flokraft_core.settings import HttpServiceSettings


class QueryApiSettings(HttpServiceSettings):
    service_name: str = "query-api"
    port: int = Field(8001, ge=1, le=65535)
    # Two browser tabs polling every 3 s make 40 list calls a minute; detail views come on top.
    rate_limit: str = "120/minute"
    list_default_limit: int = Field(50, ge=1, le=100, description="Page size when none is given.")
    list_max_limit: int = Field(100, ge=1, le=1000, description="Largest page a client may ask.")


@lru_cache(maxsize=1)
def get_settings() -> QueryApiSettings:
    return QueryApiSettings()
