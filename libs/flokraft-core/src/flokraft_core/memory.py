"""The process's own memory and its container's: read for metrics and logged at a steady
interval (the old backend's debugging guide's "memory monitoring", without its per-request
gc.collect()).

The OOM killer acts on the cgroup, not on one process's RSS: what it counts is the
cgroup's usage less the page cache it can drop (inactive file pages), the figure cAdvisor
publishes as `container_memory_working_set_bytes`. Each service exports that working set
and its limit itself, so "how close is this pod to being killed" has an answer even where
no kube-state-metrics or cAdvisor is scraped (and locally).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from flokraft_core.logs import get_logger

log = get_logger(__name__)
_process = psutil.Process()

CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroup v1 reports "no limit" as a page-rounded 2**63 - 1; anything this large is none.
_UNLIMITED = 2**60


def rss_bytes() -> int:
    return int(_process.memory_info().rss)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_memory_limit_bytes(root: Path = CGROUP_ROOT) -> int | None:
    """The container's memory limit: cgroup v2 `memory.max`, else v1 `limit_in_bytes`;
    None when the cgroup sets none."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        value = _read_int(path)
        if value is not None:
            return value if value < _UNLIMITED else None
        if path.exists():  # v2 "max": present and unlimited
            return None
    return None


def cgroup_working_set_bytes(root: Path = CGROUP_ROOT) -> int | None:
    """Usage less inactive file pages, as cAdvisor computes it; None without a cgroup."""
    usage = _read_int(root / "memory.current")
    if usage is not None:
        return max(0, usage - _stat(root / "memory.stat", "inactive_file"))
    usage = _read_int(root / "memory" / "memory.usage_in_bytes")
    if usage is not None:
        inactive = _stat(root / "memory" / "memory.stat", "total_inactive_file")
        return max(0, usage - inactive)
    return None


def process_tree_rss_bytes() -> int:
    """This process and its children (the analyzer's analysis children)."""
    total = rss_bytes()
    for child in _process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue
    return total


class ContainerMemoryCollector(Collector):
    """`flokraft_memory_limit_bytes{source}` and `flokraft_memory_working_set_bytes{source}`,
    read at scrape time: the memory that counts against the limit, and the limit.

    In a container with a memory limit both come from its cgroup (source="cgroup").
    Without one (the local stack, whose processes share one unlimited cgroup) the limit is
    MEMORY_LIMIT_BYTES (source="config"), if set, and what counts against it is this
    process tree's RSS (source="process"), which is what the local stack enforces."""

    def __init__(self, root: Path = CGROUP_ROOT) -> None:
        self.root = root
        self.configured_limit: int | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit = GaugeMetricFamily(
            "flokraft_memory_limit_bytes",
            "Memory limit of this container: the cgroup's, else the configured one.",
            labels=["source"],
        )
        working_set = GaugeMetricFamily(
            "flokraft_memory_working_set_bytes",
            "Memory counted against flokraft_memory_limit_bytes: the cgroup's usage less "
            "inactive file pages (what the OOM killer weighs), else the process tree's RSS.",
            labels=["source"],
        )
        from_cgroup = cgroup_memory_limit_bytes(self.root)
        usage = cgroup_working_set_bytes(self.root) if from_cgroup is not None else None
        if from_cgroup is not None and usage is not None:
            limit.add_metric(["cgroup"], float(from_cgroup))
            working_set.add_metric(["cgroup"], float(usage))
        else:
            if self.configured_limit is not None:
                limit.add_metric(["config"], float(self.configured_limit))
            working_set.add_metric(["process"], float(process_tree_rss_bytes()))
        yield limit
        yield working_set

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


_collector = ContainerMemoryCollector()
REGISTRY.register(_collector)


def export_memory_limit(configured_bytes: int | None) -> None:
    """Called at start-up with MEMORY_LIMIT_BYTES (the fallback when the cgroup has no limit)."""
    _collector.configured_limit = configured_bytes


async def log_memory_forever(interval_seconds: float) -> None:
    while True:
        log.info("memory", rss_mb=round(rss_bytes() / 2**20, 1))
        await asyncio.sleep(interval_seconds)
