"""Benchmark of the analyzer worker as deployed: a real analyzer process against the
Firestore and Pub/Sub emulators, one job per video, default limits (1.5 GiB child cap).

For a 1-minute and a 10-minute 1280x720@30 synthetic couple video it prints the peak RSS
of the worker process and of the job's child process (sampled every 50 ms, and the
child's own VmHWM from /metrics), frames analysed per second, and the end-to-end time from
`POST /analyses/{id}/rerun` (a real rerun-api process) to `done` as the frontend's poll
would see it.

    uv run --no-sync python bench/analyzer_bench.py [--short 60] [--long 600]

Videos are cached in .local/bench-videos (generating the 10-minute one takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from google.cloud import firestore

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_devstack.components import firestore_emulator, pubsub_emulator, service
from flokraft_devstack.issuer import TestIssuer, running_issuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.settings import REPO_ROOT

SIZE = (1280, 720)
FPS = 30
PROJECT = "bench-analyzer"
VIDEO_DIR = REPO_ROOT / ".local" / "bench-videos"


class Sampler(threading.Thread):
    """Peak RSS of the worker and of its child process tree while a job runs."""

    def __init__(self, worker_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker = psutil.Process(worker_pid)
        self.worker_peak = 0
        self.child_peak = 0
        self.child_first: float | None = None
        self.child_last: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.worker_peak = max(self.worker_peak, self.worker.memory_info().rss)
                children = self.worker.children(recursive=True)
            except psutil.Error:
                children = []
            rss = 0
            for child in children:
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    continue
            if rss:
                now = time.monotonic()
                self.child_first = self.child_first or now
                self.child_last = now
                self.child_peak = max(self.child_peak, rss)
            time.sleep(0.05)


def video(seconds: float) -> Path:
    VIDEO_DIR.mkdir(parents=True, exist_ok=True)
    path = VIDEO_DIR / f"couple-{int(seconds)}s-{SIZE[0]}x{SIZE[1]}.mp4"
    if not path.exists():
        start = time.perf_counter()
        partial = path.with_suffix(".partial.mp4")
        write_dance_video(
            partial, duration_seconds=seconds, bpm=120, dancers="mirrored", fps=FPS, size=SIZE
        )
        partial.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def run_job(
    db: firestore.Client,
    rerun_api: httpx.Client,
    issuer: TestIssuer,
    analyzer_url: str,
    worker_pid: int,
    analysis_id: str,
    path: Path,
) -> dict[str, float]:
    ref = db.collection("analyses").document(analysis_id)
    now = datetime.now(UTC)
    ref.set(
        {
            "user_id": "user1",
            "timestamp": now,
            "analysis_type": "couple",
            "status": "done",
            "processed": True,
            "video_url": path.as_uri(),
            "generation": 1,
            "attempts": 1,
        }
    )
    sampler = Sampler(worker_pid)
    sampler.start()
    peak_sum_before = metric_value(analyzer_url, "analyzer_job_peak_memory_bytes_sum")
    started = time.perf_counter()
    response = rerun_api.post(f"/analyses/{analysis_id}/rerun", headers=issuer.headers("user1"))
    if response.status_code != 202:
        raise SystemExit(f"rerun answered {response.status_code}: {response.text}")
    while True:
        data = ref.get().to_dict() or {}
        if data.get("status") in ("done", "failed") and data.get("generation") == 2:
            break
        time.sleep(0.1)
    end_to_end = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if data["status"] != "done":
        raise SystemExit(f"job failed: {data.get('error')}")
    frames = float(data["metrics"]["frames_analysed"])
    child_seconds = (sampler.child_last or 0) - (sampler.child_first or 0)
    child_hwm = metric_value(analyzer_url, "analyzer_job_peak_memory_bytes_sum") - peak_sum_before
    return {
        "end_to_end_s": end_to_end,
        "frames": frames,
        "frames_per_s": frames / child_seconds if child_seconds > 0 else 0.0,
        "worker_peak_mib": sampler.worker_peak / 2**20,
        "child_peak_mib": max(sampler.child_peak, child_hwm) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--short", type=float, default=60.0)
    parser.add_argument("--long", type=float, default=600.0)
    args = parser.parse_args()
    videos = {"short": video(args.short), "long": video(args.long)}

    fs = firestore_emulator().start(timeout=60)
    ps = pubsub_emulator().start(timeout=60)
    os.environ["FIRESTORE_EMULATOR_HOST"] = fs.host
    os.environ["PUBSUB_EMULATOR_HOST"] = ps.host
    apply_topology(PROJECT, load_topology())
    work_dir = tempfile.mkdtemp(prefix="analyzer-bench-")
    analyzer = service(
        "analyzer-bench",
        "analyzer.main",
        {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "ALLOW_FILE_URLS": "true",
            "ALLOWED_FILE_ROOTS": json.dumps([str(VIDEO_DIR)]),
            "WORK_DIR": work_dir,
            "LOG_LEVEL": "WARNING",
        },
    )
    db = firestore.Client(project=PROJECT)
    results: dict[str, dict[str, float]] = {}
    issuer_context = running_issuer(Path(work_dir), audience=PROJECT)
    issuer = issuer_context.__enter__()
    rerun_api = service(
        "rerun-api-bench",
        "rerun_api.main",
        {"GOOGLE_CLOUD_PROJECT": PROJECT, **issuer.env(), "LOG_LEVEL": "WARNING"},
    )
    try:
        rerun_api.start(ready_path="/readyz", timeout=60)
        http = httpx.Client(base_url=rerun_api.url, timeout=30)
        analyzer.start(ready_path="/readyz", timeout=60)
        assert analyzer.process is not None
        idle_worker = psutil.Process(analyzer.process.pid).memory_info().rss / 2**20
        print(f"worker idle RSS {idle_worker:.1f} MiB", flush=True)
        for label, path in videos.items():
            run = run_job(
                db, http, issuer, analyzer.url, analyzer.process.pid, f"bench-{label}", path
            )
            results[label] = run
            print(
                f"{label} ({path.name}): end-to-end {run['end_to_end_s']:.1f} s, "
                f"{run['frames']:.0f} frames at {run['frames_per_s']:.0f} frames/s, "
                f"worker peak RSS {run['worker_peak_mib']:.1f} MiB, "
                f"child peak RSS {run['child_peak_mib']:.1f} MiB",
                flush=True,
            )
    finally:
        db.close()
        analyzer.stop()
        rerun_api.stop()
        issuer_context.__exit__(None, None, None)
        ps.stop()
        fs.stop()
    child_ratio = results["long"]["child_peak_mib"] / results["short"]["child_peak_mib"]
    worker_ratio = results["long"]["worker_peak_mib"] / results["short"]["worker_peak_mib"]
    ok = child_ratio <= 1.2 and worker_ratio <= 1.2
    print(
        f"peak RSS ratio long/short: child {child_ratio:.3f}, worker {worker_ratio:.3f} "
        f"({'OK' if ok else 'FAIL'}: must be within 1.20)"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
