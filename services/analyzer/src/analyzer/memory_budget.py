"""The start-up check that the job children can fit in the container.

A child is SIGKILLed at JOB_MEMORY_LIMIT_MB and cannot allocate past JOB_MEMORY_LIMIT_MB +
JOB_MEMORY_BACKSTOP_MB (RLIMIT_DATA). Those caps only protect the worker if
MAX_CONCURRENT_JOBS such children plus the worker itself fit below the container's limit:
otherwise the kernel's OOM killer, not the analyzer, ends the job, and it takes the whole
pod (the worker, its heartbeat and every running job) with it. So a worker whose caps
cannot fit refuses to start instead of taking jobs it cannot protect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analyzer.settings import AnalyzerSettings
from flokraft_core.memory import CGROUP_ROOT, cgroup_memory_limit_bytes

MIB = 2**20


@dataclass(frozen=True)
class MemoryBudget:
    needed_mb: int
    limit_mb: int | None
    # "cgroup" (the container's limit) or "MEMORY_LIMIT_BYTES" (configured); None: no limit.
    source: str | None

    @property
    def fits(self) -> bool:
        return self.limit_mb is None or self.needed_mb <= self.limit_mb


def memory_budget(settings: AnalyzerSettings, cgroup_root: Path = CGROUP_ROOT) -> MemoryBudget:
    """What the worker needs at worst against the limit it runs under (the cgroup's wins
    over the configured one, as for the exported limit)."""
    per_child = settings.job_memory_limit_mb + settings.job_memory_backstop_mb
    needed = settings.max_concurrent_jobs * per_child + settings.worker_memory_headroom_mb
    from_cgroup = cgroup_memory_limit_bytes(cgroup_root)
    if from_cgroup is not None:
        return MemoryBudget(needed, from_cgroup // MIB, "cgroup")
    if settings.memory_limit_bytes is not None:
        return MemoryBudget(needed, settings.memory_limit_bytes // MIB, "MEMORY_LIMIT_BYTES")
    return MemoryBudget(needed, None, None)
