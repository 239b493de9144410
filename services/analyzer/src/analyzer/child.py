"""The child process that runs one analysis: `python -m analyzer.child --result-fd N`.

A fresh interpreter (never a fork of the worker, whose gRPC threads must not be copied)
reads its `ChildRequest` from stdin and writes messages (analyzer.protocol: progress, then
one result or failure) as JSON lines to the pipe it inherited as fd N. The worker
enforces the memory cap and the time limit from outside; the kernel limit set here is
only the backstop for allocations faster than the worker's RSS poll.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import IO

from analyzer.engine import AnalysisResult, VideoDecodeError
from analyzer.failures import FailureKind
from analyzer.protocol import (
    ChildFailureKind,
    ChildMessage,
    ChildRequest,
    FailureMessage,
    ProgressMessage,
    ResultMessage,
    encode,
)
from analyzer.settings import AnalyzerSettings
from analyzer.sources import SourceError, local_video

_PR_SET_PDEATHSIG = 1

Engine = Callable[..., AnalysisResult]


def die_with_parent(parent_pid: int) -> None:
    """A worker killed with SIGKILL cannot stop its child; the kernel does it for us."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the worker's own kill path remains
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def ignore_stop_signals() -> None:
    """The worker alone decides when a job stops (SIGKILL from it, or the kernel when it
    dies). A SIGTERM sent to the whole process group (a local supervisor, Ctrl-C) must not
    kill the job the worker is letting finish within its shutdown grace."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def set_memory_backstop(limit_bytes: int) -> None:
    if limit_bytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def load_engine(import_path: str) -> Engine:
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"ENGINE must be 'module:function', got {import_path!r}")
    engine: Engine = getattr(importlib.import_module(module_name), attribute)
    return engine


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Reporter:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def send(self, message: ChildMessage) -> None:
        self._stream.write(encode(message))
        self._stream.flush()

    def progress(self, fraction: float) -> None:
        self.send(ProgressMessage(value=float(fraction)))

    def failure(self, kind: ChildFailureKind, message: str, *, retryable: bool) -> None:
        self.send(
            FailureMessage(
                kind=kind, message=message, retryable=retryable, peak_rss_bytes=peak_rss_bytes()
            )
        )


def run_job(request: ChildRequest, reporter: Reporter) -> None:
    settings = AnalyzerSettings.model_validate(request.settings)
    try:
        engine = load_engine(settings.engine)
        with local_video(request.video_url, settings) as path:
            result = engine(path, request.analysis_type, progress=reporter.progress)
    except MemoryError:
        reporter.failure(FailureKind.MEMORY, "MemoryError", retryable=True)
        return
    except VideoDecodeError as exc:
        reporter.failure(FailureKind.DECODE, str(exc), retryable=False)
        return
    except SourceError as exc:
        reporter.failure(FailureKind.SOURCE, exc.message, retryable=exc.retryable)
        return
    reporter.send(
        ResultMessage(metrics=result.metrics(), text=result.text, peak_rss_bytes=peak_rss_bytes())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runs one analysis (started by the worker).")
    parser.add_argument("--result-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--memory-backstop-bytes", type=int, default=0)
    args = parser.parse_args(argv)
    ignore_stop_signals()
    die_with_parent(args.parent_pid)
    set_memory_backstop(args.memory_backstop_bytes)
    request = ChildRequest.model_validate_json(sys.stdin.read())
    with os.fdopen(args.result_fd, "w", encoding="utf-8") as stream:
        reporter = Reporter(stream)
        try:
            run_job(request, reporter)
        except MemoryError:
            reporter.failure(FailureKind.MEMORY, "MemoryError", retryable=True)
        except Exception as exc:  # any other engine failure is a crash of this attempt
            reporter.failure(FailureKind.CRASH, type(exc).__name__, retryable=True)
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
