"""Reading a running service from outside, as tests and benchmarks do: its Prometheus
metrics."""

from __future__ import annotations

import httpx


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
