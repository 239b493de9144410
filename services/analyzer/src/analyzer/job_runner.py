"""Runs one analysis in a child process and enforces its memory cap and time limit.

The child is a fresh interpreter (subprocess, never fork: the worker has gRPC threads).
Every `memory_poll_seconds` the worker sums the RSS of the child and its own children
and SIGKILLs the lot above the cap, like the kernel's OOM killer would, but before the
pod's limit is reached. The child's RLIMIT_DATA (cap + backstop) catches allocations
faster than the poll; they surface as MemoryError in the child, reported as the same
memory reason.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
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
from analyzer.protocol import (
    ChildRequest,
    FailureMessage,
    FinalMessage,
    MessageReader,
    ProgressMessage,
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


class StopReason(StrEnum):
    """Why the worker killed a child (also the label of analyzer_child_kills_total)."""

    MEMORY = "memory"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    SUPERSEDED = "superseded"  # the job is no longer ours: a rerun or another worker


@dataclass
class _Watch:
    """What the worker has seen of one child so far."""

    started: float
    deadline: float
    last_report: float
    reader: MessageReader = field(default_factory=MessageReader)
    pipe_open: bool = True
    progress: float = 0.0
    final: FinalMessage | None = None
    peak_rss: int = 0


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
        request = ChildRequest(
            settings=settings.model_dump(mode="json"),
            video_url=video_url,
            analysis_type=analysis_type,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(request.model_dump_json().encode())
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
        """Reads the child's messages and checks its limits until it exits or is killed."""
        watch = _Watch(
            started=started,
            deadline=started + self._settings.job_timeout_seconds,
            last_report=time.monotonic(),
        )
        handle = psutil.Process(process.pid)
        stopped: StopReason | None = None
        with selectors.DefaultSelector() as selector:
            selector.register(read_fd, selectors.EVENT_READ)
            while watch.pipe_open or process.poll() is None:
                self._read_messages(selector, read_fd, watch)
                if process.poll() is not None:
                    continue
                self._sample_tree_rss(handle, watch)
                stopped = self._limit_reached(watch, on_progress, abort)
                if stopped is not None:
                    self._stop_child(process, stopped)
                    break
        metrics.child_ended(handle)
        return self._outcome(process.returncode, watch, stopped)

    def _read_messages(self, selector: selectors.BaseSelector, read_fd: int, watch: _Watch) -> None:
        """Waits up to one memory poll for the pipe; keeps the latest progress and the
        final message."""
        poll = self._settings.memory_poll_seconds
        if not watch.pipe_open:
            time.sleep(poll)
            return
        if not selector.select(timeout=poll):
            return
        chunk = os.read(read_fd, 65536)
        if not chunk:
            watch.pipe_open = False
            selector.unregister(read_fd)
        for message in watch.reader.feed(chunk):
            if isinstance(message, ProgressMessage):
                watch.progress = message.value
            else:
                watch.final = message

    def _sample_tree_rss(self, handle: psutil.Process, watch: _Watch) -> None:
        """The memory sample of the child and its own children (what the cap applies to)."""
        watch.peak_rss = max(watch.peak_rss, metrics.child_sampled(handle, _tree_rss(handle)))

    def _limit_reached(
        self, watch: _Watch, on_progress: ProgressSink, abort: threading.Event | None
    ) -> StopReason | None:
        """Whether the child must stop now; reports progress when it is due."""
        now = time.monotonic()
        if watch.peak_rss > self._cap_bytes:
            return StopReason.MEMORY
        if now > watch.deadline:
            return StopReason.TIMEOUT
        if abort is not None and abort.is_set():
            return StopReason.SHUTDOWN
        if now - watch.last_report >= self._settings.progress_interval_seconds:
            watch.last_report = now
            if not self._report(on_progress, watch.progress):
                return StopReason.SUPERSEDED
        return None

    def _stop_child(self, process: subprocess.Popen[bytes], reason: StopReason) -> None:
        _kill_tree(process.pid)
        metrics.CHILD_KILLS.labels(reason.value).inc()
        process.wait()

    def _report(self, on_progress: ProgressSink, value: float) -> bool:
        try:
            return on_progress(value)
        except Exception as exc:  # a lost progress write must not stop the analysis
            log.warning("progress_write_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return True

    def _kill_failure(self, reason: StopReason) -> Failure:
        if reason is StopReason.MEMORY:
            return memory_failure(self._settings.job_memory_limit_mb)
        if reason is StopReason.TIMEOUT:
            return timeout_failure(self._settings.job_timeout_seconds)
        return shutdown_failure()

    def _outcome(self, returncode: int, watch: _Watch, stopped: StopReason | None) -> JobOutcome:
        seconds = time.monotonic() - watch.started
        final = watch.final
        peak = max(watch.peak_rss, final.peak_rss_bytes if final is not None else 0)
        if stopped is StopReason.SUPERSEDED:
            return JobSuperseded(peak, seconds)
        if stopped is not None:
            return JobFailed(self._kill_failure(stopped), peak, seconds)
        if isinstance(final, FailureMessage):
            return JobFailed(self._child_failure(final), peak, seconds)
        if final is not None:
            return JobSucceeded(
                metrics=dict(final.metrics), text=final.text, peak_rss_bytes=peak, seconds=seconds
            )
        if returncode < 0:
            try:
                detail = f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                detail = f"killed by signal {-returncode}"
        else:
            detail = f"exit status {returncode}"
        return JobFailed(crash_failure(detail), peak, seconds)

    def _child_failure(self, message: FailureMessage) -> Failure:
        if message.kind is FailureKind.MEMORY:
            return memory_failure(self._settings.job_memory_limit_mb)
        if message.kind is FailureKind.DECODE:
            return decode_failure(message.message)
        if message.kind is FailureKind.SOURCE:
            return source_failure(message.message, retryable=message.retryable)
        return crash_failure(message.message or "unknown error")
