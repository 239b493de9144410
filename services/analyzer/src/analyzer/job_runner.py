"""Runs one analysis in a child process and enforces its memory cap and time limit.

The child is a fresh interpreter (subprocess, never fork: the worker has gRPC threads).
Every `memory_poll_seconds` the worker sums the RSS of the child and its own children
and SIGKILLs the lot above the cap, like the kernel's OOM killer would, but before the
pod's limit is reached. The child's RLIMIT_DATA (cap + backstop) catches allocations
faster than the poll; they surface as MemoryError in the child, reported as the same
memory reason.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from analyzer import metrics
from analyzer.failures import (
    Failure,
    FailureKind,
    crash_failure,
    decode_failure,
    memory_failure,
    shutdown_failure,
    source_failure,
    timeout_failure,
)
from analyzer.settings import AnalyzerSettings
from flokraft_core.logs import get_logger

log = get_logger(__name__)

# Returns False when the job is no longer ours (a rerun or another worker took it).
ProgressSink = Callable[[float], bool]


@dataclass(frozen=True)
class JobSucceeded:
    metrics: dict[str, Any]
    text: str
    peak_rss_bytes: int
    seconds: float


@dataclass(frozen=True)
class JobFailed:
    failure: Failure
    peak_rss_bytes: int
    seconds: float


@dataclass(frozen=True)
class JobSuperseded:
    """The document moved on while the job ran; its result is no longer wanted."""

    peak_rss_bytes: int
    seconds: float


JobOutcome = JobSucceeded | JobFailed | JobSuperseded


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
        members = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for member in members:
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue


class _Lines:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        messages: list[dict[str, Any]] = []
        for line in complete:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                messages.append(message)
        return messages


class JobRunner:
    def __init__(self, settings: AnalyzerSettings) -> None:
        self._settings = settings
        self._cap_bytes = settings.job_memory_limit_mb * 2**20
        backstop = settings.job_memory_backstop_mb
        self._backstop_bytes = (settings.job_memory_limit_mb + backstop) * 2**20 if backstop else 0

    def run(
        self,
        video_url: str,
        analysis_type: str,
        *,
        on_progress: ProgressSink,
        abort: threading.Event | None = None,
    ) -> JobOutcome:
        """Blocks until the child ends. `abort` (set when the shutdown grace is over) kills
        the child and returns a retryable shutdown failure."""
        settings = self._settings
        started = time.monotonic()
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "analyzer.child",
                    "--result-fd",
                    str(write_fd),
                    "--parent-pid",
                    str(os.getpid()),
                    "--memory-backstop-bytes",
                    str(self._backstop_bytes),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
                # Its own process group: a SIGTERM to the worker's group (a local
                # supervisor, Ctrl-C) must not end a job the worker lets finish. The child
                # still dies with the worker (PR_SET_PDEATHSIG in analyzer.child).
                process_group=0,
            )
        finally:
            os.close(write_fd)
        request = {
            "settings": settings.model_dump(mode="json"),
            "video_url": video_url,
            "analysis_type": analysis_type,
        }
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(request).encode())
            process.stdin.close()
        except BrokenPipeError:
            pass  # the child died at once; its exit status says why
        try:
            return self._supervise(process, read_fd, started, on_progress, abort)
        finally:
            os.close(read_fd)
            if process.poll() is None:
                _kill_tree(process.pid)
            process.wait()

    def _supervise(
        self,
        process: subprocess.Popen[bytes],
        read_fd: int,
        started: float,
        on_progress: ProgressSink,
        abort: threading.Event | None,
    ) -> JobOutcome:
        settings = self._settings
        deadline = started + settings.job_timeout_seconds
        handle = psutil.Process(process.pid)
        lines = _Lines()
        final: dict[str, Any] | None = None
        peak = 0
        latest_progress = 0.0
        last_report = time.monotonic()
        pipe_open = True
        killed: FailureKind | None = None
        superseded = False
        with selectors.DefaultSelector() as selector:
            selector.register(read_fd, selectors.EVENT_READ)
            while pipe_open or process.poll() is None:
                if pipe_open and selector.select(timeout=settings.memory_poll_seconds):
                    chunk = os.read(read_fd, 65536)
                    if not chunk:
                        pipe_open = False
                        selector.unregister(read_fd)
                    for message in lines.feed(chunk):
                        if message.get("type") == "progress":
                            latest_progress = float(message.get("value", 0.0))
                        elif message.get("type") in ("result", "failure"):
                            final = message
                elif not pipe_open:
                    time.sleep(settings.memory_poll_seconds)
                if process.poll() is not None:
                    continue
                peak = max(peak, metrics.child_sampled(handle, _tree_rss(handle)))
                now = time.monotonic()
                if peak > self._cap_bytes:
                    killed = FailureKind.MEMORY
                elif now > deadline:
                    killed = FailureKind.TIMEOUT
                elif abort is not None and abort.is_set():
                    killed = FailureKind.SHUTDOWN
                elif now - last_report >= settings.progress_interval_seconds:
                    last_report = now
                    if not self._report(on_progress, latest_progress):
                        killed, superseded = FailureKind.SHUTDOWN, True
                if killed is not None:
                    _kill_tree(process.pid)
                    metrics.CHILD_KILLS.labels("superseded" if superseded else killed).inc()
                    process.wait()
                    break
        metrics.child_ended(handle)
        seconds = time.monotonic() - started
        if final is not None and final.get("peak_rss_bytes"):
            peak = max(peak, int(final["peak_rss_bytes"]))
        if superseded:
            return JobSuperseded(peak, seconds)
        if killed is not None:
            return JobFailed(self._kill_failure(killed), peak, seconds)
        return self._outcome(process.returncode, final, peak, seconds)

    def _report(self, on_progress: ProgressSink, value: float) -> bool:
        try:
            return on_progress(value)
        except Exception as exc:  # a lost progress write must not stop the analysis
            log.warning("progress_write_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return True

    def _kill_failure(self, kind: FailureKind) -> Failure:
        if kind is FailureKind.MEMORY:
            return memory_failure(self._settings.job_memory_limit_mb)
        if kind is FailureKind.TIMEOUT:
            return timeout_failure(self._settings.job_timeout_seconds)
        return shutdown_failure()

    def _outcome(
        self, returncode: int, final: dict[str, Any] | None, peak: int, seconds: float
    ) -> JobOutcome:
        if final is not None and final.get("type") == "result":
            return JobSucceeded(
                metrics=dict(final.get("metrics") or {}),
                text=str(final.get("text") or ""),
                peak_rss_bytes=peak,
                seconds=seconds,
            )
        if final is not None:
            kind = final.get("kind")
            message = str(final.get("message") or "")
            retryable = bool(final.get("retryable", True))
            if kind == "memory":
                failure = memory_failure(self._settings.job_memory_limit_mb)
            elif kind == "decode":
                failure = decode_failure(message)
            elif kind == "source":
                failure = source_failure(message, retryable=retryable)
            else:
                failure = crash_failure(message or "unknown error")
            return JobFailed(failure, peak, seconds)
        if returncode < 0:
            try:
                detail = f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                detail = f"killed by signal {-returncode}"
        else:
            detail = f"exit status {returncode}"
        return JobFailed(crash_failure(detail), peak, seconds)
