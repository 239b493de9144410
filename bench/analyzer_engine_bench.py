"""Benchmark of analyzer.engine: does peak memory stay flat with video length?

Generates a 1-minute and a 10-minute 1280x720 synthetic couple-dance video (streamed to
disk by analyzer.engine.synthetic), then analyses each in a fresh Python subprocess so that
each run's peak RSS is its own. Prints peak RSS per run, their ratio, throughput and wall
time.

    uv run python bench/analyzer_engine_bench.py [--short 60] [--long 600]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analyzer.engine.synthetic import write_dance_video

SIZE = (1280, 720)
FPS = 30

# Runs in the child. Peak RSS is read from VmHWM in /proc/self/status, which belongs to
# the child's own address space. (ru_maxrss is not usable here: Linux carries the forking
# parent's high-water mark across exec, and RUSAGE_CHILDREN is a max over *all* children.)
CHILD = """
import json, resource, sys, time

def status_kb(key):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from analyzer.engine import analyze_video
baseline_kb = status_kb("VmRSS")
start = time.perf_counter()
result = analyze_video(sys.argv[1], "couple")
wall = time.perf_counter() - start
print(json.dumps({
    "peak_rss_kb": status_kb("VmHWM"),
    "baseline_rss_kb": baseline_kb,
    "wall_seconds": wall,
    "frames": result.frames_analysed,
    "tempo_bpm": result.tempo_bpm,
    "sync_score": result.sync_score,
    "total_score": result.total_score,
}))
"""


def generate(path: Path, seconds: float) -> float:
    start = time.perf_counter()
    write_dance_video(
        path, duration_seconds=seconds, bpm=120, dancers="mirrored", fps=FPS, size=SIZE
    )
    return time.perf_counter() - start


def analyse_in_subprocess(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=float, default=60.0, help="short video seconds")
    parser.add_argument("--long", type=float, default=600.0, help="long video seconds")
    args = parser.parse_args()

    runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="analyzer-bench-") as tmp:
        for label, seconds in (("short", args.short), ("long", args.long)):
            path = Path(tmp) / f"{label}.mp4"
            gen_wall = generate(path, seconds)
            size_mb = path.stat().st_size / 1e6
            print(
                f"generated {label}: {seconds:.0f} s {SIZE[0]}x{SIZE[1]}@{FPS} "
                f"({size_mb:.1f} MB) in {gen_wall:.1f} s",
                flush=True,
            )
            run = analyse_in_subprocess(path)
            runs[label] = run
            print(
                f"analysed {label}: {run['frames']:.0f} frames in {run['wall_seconds']:.1f} s "
                f"= {run['frames'] / run['wall_seconds']:.0f} frames/s; "
                f"peak RSS {run['peak_rss_kb'] / 1024:.1f} MiB "
                f"(after imports {run['baseline_rss_kb'] / 1024:.1f} MiB); "
                f"tempo {run['tempo_bpm']} BPM, sync {run['sync_score']}, "
                f"score {run['total_score']}",
                flush=True,
            )
    ratio = runs["long"]["peak_rss_kb"] / runs["short"]["peak_rss_kb"]
    verdict = "OK" if ratio <= 1.2 else "FAIL"
    print(f"peak RSS ratio long/short: {ratio:.3f} ({verdict}: must be within 1.20)")
    if verdict == "FAIL":
        sys.exit(1)


if __name__ == "__main__":
    main()
