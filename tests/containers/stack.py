"""The three rendered pods plus what they talk to, on this machine: the emulators
(Firestore, Pub/Sub, Cloud Storage for the videos) and dev-auth's JWKS as host processes
(as `make dev` runs them), and the pods on the host network. Used by the container tests
(conftest.py) and `make dev-containers` (devstack.py).

Every address goes to the chart as values (a values file per run on top of
values-local.yaml), so the containers get them the way a cluster's pods would: through
the rendered ConfigMap, Secret and env.
"""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.containers.engine import SERVICES
from tests.containers.pods import Pod, PodSpec, pod_spec, render_chart

LOCAL_VALUES = Path(__file__).with_name("values-local.yaml")
# `make dev-containers`' ports: clear of `make dev` (8001-8003, 8080, 8085, 8090, 9090).
DEV_PORTS = {"query-api": 18001, "rerun-api": 18002, "analyzer": 18003}


def host_port() -> int:
    """A free port below the kernel's ephemeral range (32768+), from which the test
    suite's own free ports come, so a container's port never collides with one of them."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


@dataclass(frozen=True)
class Addresses:
    """Where the pods find everything that is not a pod."""

    project: str
    firestore_host: str
    pubsub_host: str
    jwks_url: str
    issuer: str
    audience: str
    # The Cloud Storage emulator's URL (STORAGE_EMULATOR_HOST) and the videos' bucket.
    storage_url: str
    bucket: str

    def video_url(self, uid: str, name: str) -> str:
        return f"gs://{self.bucket}/{uid}/{name}"


def host_side(
    project: str,
    bucket: str,
    *,
    firestore: ManagedProcess,
    pubsub: ManagedProcess,
    storage_emulator: ManagedProcess,
    issuer: TestIssuer,
    videos: Path | None = None,
) -> Addresses:
    """The videos' bucket created on the running storage emulator (with every
    `<uid>/<name>.mp4` under `videos` uploaded), and the addresses the pods are given."""
    client = storage.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": storage_emulator.url},
    )
    client.create_bucket(bucket)
    for path in videos.rglob("*.mp4") if videos else ():
        blob = client.bucket(bucket).blob(path.relative_to(videos).as_posix())
        blob.upload_from_filename(str(path))
    client.close()
    return Addresses(
        project=project,
        firestore_host=firestore.host,
        pubsub_host=pubsub.host,
        jwks_url=issuer.jwks_url,
        issuer=issuer.issuer,
        audience=issuer.audience,
        storage_url=storage_emulator.url,
        bucket=bucket,
    )


def run_values(
    addresses: Addresses, ports: dict[str, int], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The per-run values on top of values-local.yaml."""
    values: dict[str, Any] = {
        "gcp": {"projectId": addresses.project},
        "auth": {
            "jwksUrl": addresses.jwks_url,
            "issuer": addresses.issuer,
            "audience": addresses.audience,
        },
        "videos": {"bucket": addresses.bucket},
        "sharedEnv": {
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "FIRESTORE_EMULATOR_HOST": addresses.firestore_host,
            "PUBSUB_EMULATOR_HOST": addresses.pubsub_host,
            "STORAGE_EMULATOR_HOST": addresses.storage_url,
        },
        "services": {name: {"port": port} for name, port in ports.items()},
    }
    return _merge(values, extra or {})


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_specs(
    addresses: Addresses, ports: dict[str, int], extra: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, PodSpec]]:
    docs = render_chart(LOCAL_VALUES, run_values(addresses, ports, extra))
    return docs, {service: pod_spec(docs, service) for service in SERVICES}


@dataclass
class Stack:
    """The running pods, by service."""

    addresses: Addresses
    docs: list[dict[str, Any]]
    pods: dict[str, Pod] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.pods[service].url


@contextlib.contextmanager
def running_stack(
    addresses: Addresses,
    ports: dict[str, int],
    *,
    name_prefix: str,
    extra: dict[str, Any] | None = None,
    ready_timeout: float = 120.0,
) -> Iterator[Stack]:
    """The three pods started from one render, each ready (its readiness probe passed);
    removed on exit."""
    docs, specs = render_specs(addresses, ports, extra)
    stack = Stack(addresses=addresses, docs=docs)
    try:
        for service in SERVICES:
            stack.pods[service] = Pod(spec=specs[service], name=f"{name_prefix}-{service}").start()
        for pod in stack.pods.values():
            pod.wait_ready(ready_timeout)
        yield stack
    finally:
        for pod in stack.pods.values():
            pod.remove()


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(url)
