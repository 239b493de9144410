"""Waiting for a condition and reading a service's Prometheus metrics: what tests of
real processes need instead of sleeping for a fixed time. Both live with the process
harness in flokraft_devstack (the benchmarks use them too); the tests import them here."""

from __future__ import annotations

from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import wait_until

__all__ = ["metric_value", "wait_until"]
