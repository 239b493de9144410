"""The local stack's components as processes, one definition each: how the Firestore,
Pub/Sub and Cloud Storage emulators and a service are started. `make dev` (circus, see
stack.py) runs the same commands; tests and benchmarks start them with the harness in
`flokraft_devstack.processes`, on free ports, with their output under LOG_DIR.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.pubsub_v1 import types

from flokraft_devstack.processes import ManagedProcess, free_port
from flokraft_devstack.settings import REPO_ROOT

FIRESTORE_LAUNCHER = REPO_ROOT / "tools" / "firestore-emulator" / "start.mjs"
LOG_DIR = REPO_ROOT / ".local" / "test-logs"


def firestore_command(port: int) -> list[str]:
    return ["node", str(FIRESTORE_LAUNCHER), "--port", str(port)]


def pubsub_command(port: int, host: str = "127.0.0.1", extra_args: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pubsub_emulator",
        "--host",
        host,
        "--port",
        str(port),
        *extra_args,
    ]


def firestore_emulator(port: int | None = None, *, log_dir: Path = LOG_DIR) -> ManagedProcess:
    port = port or free_port()
    return ManagedProcess(
        name="firestore-emulator",
        command=firestore_command(port),
        env={},
        port=port,
        log_path=log_dir / f"firestore-{port}.log",
        cwd=REPO_ROOT,
    )


def pubsub_emulator(
    port: int | None = None, *, extra_args: Sequence[str] = (), log_dir: Path = LOG_DIR
) -> ManagedProcess:
    """Ready once it answers gRPC, not merely when its port is open."""
    port = port or free_port()
    return ManagedProcess(
        name="pubsub-emulator",
        command=pubsub_command(port, extra_args=extra_args),
        env={},
        port=port,
        log_path=log_dir / f"pubsub-{port}.log",
        cwd=REPO_ROOT,
        ready_check=lambda: _pubsub_answers(f"127.0.0.1:{port}"),
    )


def start_pubsub_emulator(
    port: int | None = None, *, extra_args: Sequence[str] = (), timeout: float = 15.0
) -> ManagedProcess:
    """A started Pub/Sub emulator. With `port=None` a free port is chosen, retrying if
    another process grabs it first; an explicit port (say, the one of an emulator that
    was just stopped) is used as is."""
    attempts = 3 if port is None else 1
    last_error: Exception | None = None
    for _ in range(attempts):
        emulator = pubsub_emulator(port, extra_args=extra_args)
        try:
            return emulator.start(timeout=timeout)
        except (RuntimeError, TimeoutError) as error:
            last_error = error
            emulator.stop()
    raise RuntimeError(f"pubsub emulator did not start: {last_error}")


def _pubsub_answers(host: str) -> bool:
    request = types.ListTopicsRequest.pb()(project="projects/readiness-check")
    with grpc.insecure_channel(host) as channel:
        # Raw protobuf messages: the proto-plus classes give no static types to name here.
        list_topics: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            "/google.pubsub.v1.Publisher/ListTopics",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=types.ListTopicsResponse.pb().FromString,
        )
        try:
            list_topics(request, timeout=1.0)
        except grpc.RpcError:
            return False
        return True


def storage_emulator(port: int | None = None, *, log_dir: Path = LOG_DIR) -> ManagedProcess:
    """gcp-storage-emulator (the root's test dependencies), in memory: the videos' bucket."""
    port = port or free_port()
    return ManagedProcess(
        name="storage-emulator",
        command=[
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
        ],
        env={},
        port=port,
        log_path=log_dir / f"storage-{port}.log",
        cwd=REPO_ROOT,
    )


def service(
    name: str,
    module: str,
    env: Mapping[str, str],
    port: int | None = None,
    *,
    log_dir: Path = LOG_DIR,
) -> ManagedProcess:
    """A service run as its own process, exactly as `make dev` runs it."""
    port = port or free_port()
    return ManagedProcess(
        name=name,
        command=[sys.executable, "-m", module],
        env={"PORT": str(port), "HOST": "127.0.0.1", **env},
        port=port,
        log_path=log_dir / f"{name}-{port}.log",
        cwd=REPO_ROOT,
    )
