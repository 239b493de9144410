"""Start and stop the emulator as a subprocess, for this project's tests.

emulator = start_emulator()
os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
...
emulator.stop()
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.pubsub_v1 import types


@dataclass
class RunningEmulator:
    host: str  # "127.0.0.1:PORT", the value for PUBSUB_EMULATOR_HOST
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 5 s. Safe to call twice."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1 (the repository's tests and
    benchmarks take theirs from here too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def emulator_command(port: int, extra_args: Sequence[str] = ()) -> list[str]:
    """How the emulator is started for tests, whoever manages the process."""
    return [
        sys.executable,
        "-m",
        "pubsub_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra_args,
    ]


def start_emulator(
    port: int | None = None,
    *,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 15.0,
) -> RunningEmulator:
    """Start ``python -m pubsub_emulator`` on 127.0.0.1 and wait until it answers gRPC.

    With ``port=None`` a free port is chosen (retrying if another process grabs it first);
    an explicit port, e.g. the one of an emulator that was just stopped, is used as is.
    """
    attempts = 3 if port is None else 1
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        process = subprocess.Popen(emulator_command(chosen, extra_args), stdout=subprocess.DEVNULL)
        emulator = RunningEmulator(f"127.0.0.1:{chosen}", chosen, process)
        try:
            _wait_ready(emulator, ready_timeout)
            return emulator
        except RuntimeError as error:
            last_error = str(error)
            emulator.stop()
    raise RuntimeError(last_error)


def _wait_ready(emulator: RunningEmulator, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    request = types.ListTopicsRequest.pb()(project="projects/readiness-check")
    with grpc.insecure_channel(emulator.host) as channel:
        list_topics = channel.unary_unary(
            "/google.pubsub.v1.Publisher/ListTopics",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=types.ListTopicsResponse.pb().FromString,
        )
        while True:
            if emulator.process.poll() is not None:
                raise RuntimeError(
                    f"pubsub emulator exited with code {emulator.process.returncode} "
                    f"before becoming ready on port {emulator.port}"
                )
            try:
                list_topics(request, timeout=1.0)
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pubsub emulator not ready on {emulator.host} after {timeout} s"
                    ) from None
                time.sleep(0.05)
