"""The process harness: start a process with its output in a log file, wait until it
listens (or answers), stop its whole process tree. The one home of these mechanics for the
tests, the benchmarks, the Pub/Sub emulator's tests and the local stack's own hooks.

Standard library only, so any of them can import it without pulling anything else in.
What runs in those processes (the emulators, a service) is in `flokraft_devstack.components`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Local servers only: a proxy from the environment must never see these requests.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 200."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.2,
    process: subprocess.Popen[bytes] | None = None,
) -> bool:
    """True as soon as `predicate()` is truthy; after `timeout`, one last try decides.

    With `process`, a process that exits meanwhile is an error at once rather than a wait
    for the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before it was ready")
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def wait_for_port(
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    host: str = "127.0.0.1",
) -> None:
    if not wait_until(lambda: port_open(port, host), timeout, 0.05, process):
        raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class ManagedProcess:
    """One process in its own session (so `stop` reaches its children too), its output
    appended to `log_path`."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    cwd: Path | None = None
    # Polled after the port opens, for servers that listen before they can answer.
    ready_check: Callable[[], bool] | None = field(default=None, repr=False)
    # Pinned before exec, so every thread the process starts inherits it (benchmarks).
    cpus: Collection[int] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def start(self, *, ready_path: str | None = None, timeout: float = 30.0) -> ManagedProcess:
        """Starts the process and returns once it listens on its port, passes its
        `ready_check`, and (with `ready_path`) answers 200 there."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cpus = set(self.cpus)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.command),
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        wait_for_port(self.port, timeout, self.process)
        if self.ready_check is not None and not wait_until(
            self.ready_check, timeout, 0.05, self.process
        ):
            raise TimeoutError(f"{self.name} not ready after {timeout} s\n{self.tail()}")
        if ready_path and not wait_until(lambda: http_ok(self.url + ready_path), timeout, 0.1):
            raise TimeoutError(f"{self.name} {ready_path} not 200 after {timeout} s\n{self.tail()}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """`sig` to the whole process group, SIGKILL after `timeout`; the exit code (None
        if never started). Safe to call twice."""
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
