"""Starting and stopping the real processes the tests talk to (emulators, services)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pubsub_emulator.testing import emulator_command, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRESTORE_LAUNCHER = REPO_ROOT / "tools" / "firestore-emulator" / "start.mjs"
LOG_DIR = REPO_ROOT / ".local" / "test-logs"


def env_with_uv(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the uv that runs the tests first on PATH, for commands typed as `uv ...`.

    `uv run` names itself in UV; make installs uv into ~/.local/bin when missing, which a
    fresh machine's PATH may not include, so a bare `uv` in a subprocess would not be found.
    """
    uv = env.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    return {**env, "PATH": os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")])}


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class ManagedProcess:
    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready_path: str | None = None, timeout: float = 30.0) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.command),
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, timeout, self.process)
        if ready_path:
            self._wait_http(ready_path, timeout)
        return self

    def _wait_http(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(self.url + path, timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} {path} not 200 after {timeout} s: {last}\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        try:
            # A process frozen by an outage test (SIGSTOP) must wake up to hear the signal.
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return self.process.poll()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def firestore_emulator(port: int | None = None) -> ManagedProcess:
    port = port or free_port()
    return ManagedProcess(
        name="firestore-emulator",
        command=["node", str(FIRESTORE_LAUNCHER), "--port", str(port)],
        env={},
        port=port,
        log_path=LOG_DIR / f"firestore-{port}.log",
    )


def pubsub_emulator(port: int | None = None) -> ManagedProcess:
    port = port or free_port()
    return ManagedProcess(
        name="pubsub-emulator",
        command=emulator_command(port),
        env={},
        port=port,
        log_path=LOG_DIR / f"pubsub-{port}.log",
    )


def service(
    name: str, module: str, env: Mapping[str, str], port: int | None = None
) -> ManagedProcess:
    """A service run as its own process, exactly as `make dev` runs it."""
    port = port or free_port()
    return ManagedProcess(
        name=name,
        command=[sys.executable, "-m", module],
        env={"PORT": str(port), "HOST": "127.0.0.1", **env},
        port=port,
        log_path=LOG_DIR / f"{name}-{port}.log",
    )
