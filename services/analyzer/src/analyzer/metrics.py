"""Prometheus metrics of the worker (served on /metrics with the HTTP ones)."""

from __future__ import annotations

import threading

import psutil
from prometheus_client import Counter, Gauge, Histogram

from analyzer.settings import get_settings
from flokraft_core.memory import rss_bytes

JOBS = Counter(
    "analyzer_jobs_total",
    "Job messages handled, by outcome.",
    ["outcome"],
)
JOB_DURATION = Histogram(
    "analyzer_job_duration_seconds",
    "Wall time of one attempt, from claim to result or failure.",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800),
)
JOB_PEAK_MEMORY = Histogram(
    "analyzer_job_peak_memory_bytes",
    "Peak resident memory of the child process of one attempt.",
    buckets=tuple(mb * 2**20 for mb in (64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)),
)
CHILD_KILLS = Counter(
    "analyzer_child_kills_total",
    "Child processes killed by the worker, by reason.",
    ["reason"],
)
JOBS_IN_FLIGHT = Gauge("analyzer_jobs_in_flight", "Jobs running right now.")
WORKER_RSS = Gauge("analyzer_worker_rss_bytes", "Resident memory of the worker process itself.")
WORKER_RSS.set_function(lambda: float(rss_bytes()))
INVALID_MESSAGES = Counter(
    "analyzer_invalid_messages_total", "Job messages that failed validation (acked)."
)
DEAD_LETTERS = Counter(
    "analyzer_dead_letters_total", "Dead-lettered job messages, by what was done.", ["action"]
)

# The running children's memory, sampled by the job runner at every memory poll: the
# child's own RSS and its whole process tree's (what the cap is checked against). With
# MAX_CONCURRENT_JOBS > 1 both are sums over the running jobs; 0 when none runs.
_children: dict[int, tuple[int, int]] = {}
_children_lock = threading.Lock()
CHILD_RSS = Gauge(
    "analyzer_child_rss_bytes", "Resident memory of the running analysis child process(es)."
)
CHILD_RSS.set_function(lambda: float(sum(own for own, _ in _children.values())))
CHILD_TREE_RSS = Gauge(
    "analyzer_child_tree_rss_bytes",
    "Resident memory of the running children's whole process trees (checked against the cap).",
)
CHILD_TREE_RSS.set_function(lambda: float(sum(tree for _, tree in _children.values())))


def child_sampled(child: psutil.Process, tree_rss: int) -> int:
    """Records one memory poll of a running child; returns tree_rss for the caller's peak."""
    try:
        own = int(child.memory_info().rss)
    except psutil.Error:
        own = 0
    with _children_lock:
        _children[child.pid] = (own, tree_rss)
    return tree_rss


def child_ended(child: psutil.Process) -> None:
    with _children_lock:
        _children.pop(child.pid, None)


# Configuration as gauges, so dashboards can draw capacity and the cap from the pods
# themselves: jobs in flight against replicas x MAX_CONCURRENT_JOBS, child peaks against
# JOB_MEMORY_LIMIT_MB.
MAX_CONCURRENT_JOBS = Gauge(
    "analyzer_max_concurrent_jobs", "Jobs this worker runs at once (MAX_CONCURRENT_JOBS)."
)
MAX_CONCURRENT_JOBS.set_function(lambda: float(get_settings().max_concurrent_jobs))
JOB_MEMORY_LIMIT = Gauge(
    "analyzer_job_memory_limit_bytes",
    "Memory cap of one analysis child's process tree (JOB_MEMORY_LIMIT_MB).",
)
JOB_MEMORY_LIMIT.set_function(lambda: float(get_settings().job_memory_limit_mb * 2**20))

# Known label values start at 0, so "none so far" is a series at 0 rather than no series:
# ratios and increase() then answer 0 instead of nothing, and absent data means a broken
# scrape, not a quiet worker.
for _outcome in ("done", "failed", "superseded"):
    JOBS.labels(_outcome)
    JOB_DURATION.labels(_outcome)
for _reason in ("memory", "timeout", "shutdown", "superseded"):
    CHILD_KILLS.labels(_reason)
for _action in ("marked_failed", "invalid", "missing", "ignored"):
    DEAD_LETTERS.labels(_action)
