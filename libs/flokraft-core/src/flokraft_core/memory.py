"""The process's own memory: read for metrics and logged at a steady interval (the old
backend's debugging guide's "memory monitoring", without its per-request gc.collect())."""

from __future__ import annotations

import asyncio

import psutil

from flokraft_core.logs import get_logger

log = get_logger(__name__)
_process = psutil.Process()


def rss_bytes() -> int:
    return int(_process.memory_info().rss)


async def log_memory_forever(interval_seconds: float) -> None:
    while True:
        log.info("memory", rss_mb=round(rss_bytes() / 2**20, 1))
        await asyncio.sleep(interval_seconds)
