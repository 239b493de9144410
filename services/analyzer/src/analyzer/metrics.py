"""Prometheus metrics of the worker (served on /metrics with the HTTP ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
