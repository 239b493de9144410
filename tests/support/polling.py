"""Waiting for a condition and reading a service's Prometheus metrics: what tests of
real processes need instead of sleeping for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2) -> bool:
    """True as soon as `predicate()` is truthy; after `timeout`, one last try decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def metric_value(base_url: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` on `base_url`/metrics whose labels include `labels`
    (0 when there are none)."""
    text = httpx.get(base_url.rstrip("/") + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            total += float(value)
    return total
