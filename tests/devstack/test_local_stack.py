"""`make dev`'s process manager, run for real on free ports: everything comes up ready, a
killed analyzer is restarted while query-api keeps answering, the analyzer's memory limit
is enforced on its whole process tree, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from flokraft_devstack.processes import free_port, wait_until
from flokraft_devstack.settings import REPO_ROOT

SERVICES = ("query-api", "rerun-api", "analyzer")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def listener_pid(self, name: str) -> int | None:
        port = self.ports[name]
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return conn.pid
        return None

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _start_stack(tmp_path: Path, **extra_env: str) -> Stack:
    ports = {
        name: free_port()
        for name in ("firestore", "pubsub", "devauth", "query-api", "rerun-api", "analyzer")
    }
    env = {
        **os.environ,
        "DEV_FIRESTORE_PORT": str(ports["firestore"]),
        "DEV_PUBSUB_PORT": str(ports["pubsub"]),
        "DEV_DEVAUTH_PORT": str(ports["devauth"]),
        "DEV_QUERY_API_PORT": str(ports["query-api"]),
        "DEV_RERUN_API_PORT": str(ports["rerun-api"]),
        "DEV_ANALYZER_PORT": str(ports["analyzer"]),
        "DEV_STATE_DIR": str(tmp_path / "state"),
        **extra_env,
    }
    # The session's emulators must not leak into the stack: it brings its own.
    for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        env.pop(name, None)
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flokraft_devstack", "up"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Stack(process, ports, log)


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str, stack: Stack) -> None:
    assert wait_until(predicate, timeout), (
        f"{what} within {timeout} s\n--- stack log ---\n{stack.text()[-4000:]}"
    )


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _stop(stack: Stack) -> list[int]:
    """Ctrl-C, as a developer would; returns the pids that outlived it."""
    tree = [p.pid for p in psutil.Process(stack.process.pid).children(recursive=True)]
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stack.process.kill()
    time.sleep(0.5)
    return [pid for pid in tree if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = _start_stack(tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            _stop(running)


def test_everything_comes_up_and_a_killed_analyzer_is_restarted(stack: Stack) -> None:
    for name in SERVICES:
        for path in ("/healthz", "/readyz"):
            _wait_until(
                lambda n=name, p=path: _status(stack.url(n, p)) == 200,
                90,
                f"{name}{path} answers 200",
                stack,
            )
    old_pid = stack.listener_pid("analyzer")
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)

    # query-api answers all the while the analyzer is down and coming back.
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert _status(stack.url("query-api", "/healthz")) == 200
        answered += 1
        new_pid = stack.listener_pid("analyzer")
        if new_pid and new_pid != old_pid and _status(stack.url("analyzer", "/healthz")) == 200:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"analyzer not restarted\n{stack.text()[-4000:]}")
    assert answered > 1

    survivors = _stop(stack)
    assert survivors == [], f"processes left behind: {survivors}"
    assert stack.process.returncode is not None


def test_the_analyzer_is_killed_at_its_memory_limit(tmp_path: Path) -> None:
    # A limit below the worker's idle footprint: the plugin must kill it (and keep the
    # rest of the stack untouched), which is what the pod limit does in the cluster.
    stack = _start_stack(tmp_path, DEV_ANALYZER_MEMORY_LIMIT="40M")
    try:
        _wait_until(
            lambda: "killing it like the OOM killer" in stack.text(),
            90,
            "the analyzer is killed at its memory limit",
            stack,
        )
        _wait_until(
            lambda: _status(stack.url("query-api", "/healthz")) == 200,
            60,
            "query-api answers",
            stack,
        )
    finally:
        assert _stop(stack) == []
