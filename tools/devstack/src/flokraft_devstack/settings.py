"""What the local stack is made of and where: the settings of `make dev` (ports, limits,
state directory) and the description of one process, shared by stack.py and prometheus.py
(which would otherwise import each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[4]


class StackSettings(BaseSettings):
    """`make dev` settings: environment variables prefixed DEV_ (e.g. DEV_QUERY_API_PORT)."""

    model_config = SettingsConfigDict(env_prefix="DEV_", frozen=True)

    project: str = "demo-flokraft"
    host: str = "127.0.0.1"
    firestore_port: int = 8080
    pubsub_port: int = 8085
    devauth_port: int = 8090
    query_api_port: int = 8001
    rerun_api_port: int = 8002
    analyzer_port: int = 8003
    analyzer_memory_limit: str = Field("2G", description="Limit of the analyzer's whole tree.")
    prometheus: bool = Field(False, description="Also run Prometheus (make dev-observability).")
    prometheus_port: int = 9090
    state_dir: Path = REPO_ROOT / ".local" / "devstack"
    # auto: readable console lines when `make dev` runs in a terminal, JSON when piped.
    log_format: Literal["auto", "json", "console"] = "auto"

    def ports(self) -> dict[str, int]:
        return {
            "firestore": self.firestore_port,
            "pubsub": self.pubsub_port,
            "devauth": self.devauth_port,
            "query-api": self.query_api_port,
            "rerun-api": self.rerun_api_port,
            "analyzer": self.analyzer_port,
        }


@dataclass
class Process:
    name: str
    cmd: str
    color: str
    priority: int  # circus starts higher priorities first: the emulators before services
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
